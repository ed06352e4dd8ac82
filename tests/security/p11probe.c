/* p11probe MODULE: what an application such as pam_p11 does with a PKCS#11
 * module: dlopen, C_Initialize, C_GetSlotList. Made setuid root by the test,
 * it stands for any privileged program that loads libukey-pkcs11.so.
 * Prints the results; exit 0 if C_Initialize succeeded, 3 if it failed,
 * 2 if the module could not be loaded. */
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

int main(int argc, char** argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: p11probe MODULE\n");
        return 2;
    }
    printf("uid=%u euid=%u\n", (unsigned)getuid(), (unsigned)geteuid());
    void* dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        printf("dlopen failed: %s\n", dlerror());
        return 2;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    if (!get || get(&f) != CKR_OK || !f) {
        printf("not a PKCS#11 module\n");
        return 2;
    }
    CK_RV rv = f->C_Initialize(NULL);
    printf("C_Initialize=0x%lx\n", (unsigned long)rv);
    if (rv != CKR_OK)
        return 3;
    CK_ULONG n = 0;
    rv = f->C_GetSlotList(CK_FALSE, NULL, &n);
    printf("C_GetSlotList=0x%lx slots=%lu\n", (unsigned long)rv, (unsigned long)n);
    f->C_Finalize(NULL);
    return 0;
}
