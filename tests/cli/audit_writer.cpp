// Test-only: appends audit records through token/audit_log.h, to the log
// that ukey.conf ($UKEY_CONF) names, as the module's Audit layer will.
// tests/cli/audit.sh reads them back with `ukey audit`.
//   ukey-test-audit-writer KIND KEY USER_TYPE RV DETAIL [COUNT]
#include "token/audit_log.h"
#include "token/config.h"

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv)
{
    if (argc != 6 && argc != 7) {
        std::fprintf(stderr, "usage: %s KIND KEY USER_TYPE RV DETAIL [COUNT]\n", argv[0]);
        return 2;
    }
    const auto kind = ukey::audit_kind_from(argv[1]);
    if (!kind) {
        std::fprintf(stderr, "unknown kind\n");
        return 2;
    }
    auto cfg = ukey::load_config(ukey::config_path());
    if (!cfg) {
        std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
        return 1;
    }
    auto log = ukey::AuditLog::open(cfg->audit);
    if (!log || !*log) {
        std::fprintf(stderr, "%s\n", log ? "the audit log is disabled" : log.error().message.c_str());
        return 1;
    }
    const int count = argc == 7 ? std::atoi(argv[6]) : 1;
    const ukey::AuditEvent event{*kind, argv[2], argv[3], CK_RV(std::strtoul(argv[4], nullptr, 0)), argv[5]};
    for (int i = 0; i < count; ++i) {
        auto ok = (*log)->append(event);
        if (!ok) {
            std::fprintf(stderr, "%s\n", ok.error().message.c_str());
            return 1;
        }
    }
    return 0;
}
