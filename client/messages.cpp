#include "client/messages.h"

#include "token/ckr_name.h"

#include <cstdio>

namespace ukey::client {

namespace {
struct Entry {
    CK_RV rv;
    const char* name;
    const char* sentence;
};

// The codes an application or the CLI can meet, in v2.40 order.
const Entry entries[] = {
    {CKR_OK, "CKR_OK", "done"},
    {CKR_CANCEL, "CKR_CANCEL", "the operation was cancelled"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY", "the computer ran out of memory: close other programs and try again"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", "that Key or reader is not known: list the Keys with `ukey list`"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", "the Key's driver failed unexpectedly: unplug the Key, plug it in again and retry"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED", "the Key could not do this: check the log (journalctl) for the cause"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", "ukey passed bad arguments to the Key's driver: this is a bug, please report it"},
    {CKR_NO_EVENT, "CKR_NO_EVENT", "nothing happened"},
    {CKR_NEED_TO_CREATE_THREADS, "CKR_NEED_TO_CREATE_THREADS", "the Key's driver needs threads it may not create"},
    {CKR_CANT_LOCK, "CKR_CANT_LOCK", "the Key's driver cannot run safely with several threads"},
    {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY", "that property of the object cannot be changed"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE", "that value is secret and never leaves the Key"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID", "the Key does not know that property"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID", "the Key refused a value it was given"},
    {CKR_DATA_INVALID, "CKR_DATA_INVALID", "the Key refused the data it was given"},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE", "the data is too long or too short for this key"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", "the Key reported a hardware error: unplug it, plug it in again and retry; if it persists the Key may be faulty"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", "the Key is full: delete old certificates or keys (`ukey cert list`, `ukey key list`)"},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", "the Key was removed during the operation: plug it in again and retry"},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID", "the encrypted data is damaged or not for this key"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE", "the encrypted data has the wrong length for this key"},
    {CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED", "the operation was cancelled"},
    {CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL", "no operation is running in parallel"},
    {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED", "this Key's driver does not support that operation"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID", "that key is not on the Key (any more)"},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE", "the Key does not support that key size: choose another (`ukey key generate --help`)"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT", "that key cannot be used for this operation"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED", "that key is not allowed to do this"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID", "the Key does not support that algorithm"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID", "the Key refused the algorithm's parameters"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID", "that object is not on the Key (any more)"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE", "the Key is busy with another operation: retry in a moment"},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED", "the operation was not started"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", "wrong PIN"},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID", "that PIN is not allowed: avoid repeated digits, straight runs like 123456 and the old PIN"},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE", "that PIN is too short or too long for this Key (see `ukey info` for the limits)"},
    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED", "the PIN must be changed before the Key can be used: run `ukey pin change`"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED", "the PIN is locked after too many wrong tries: unlock it with the SO PIN (`ukey pin unlock`) or ask your issuer"},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED", "the connection to the Key was closed: retry"},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT", "too many programs are using the Key: close some and retry"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID", "the connection to the Key was lost (was it unplugged?): retry"},
    {CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKR_SESSION_PARALLEL_NOT_SUPPORTED", "parallel sessions are not supported"},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY", "the Key is write-protected"},
    {CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS", "another program is using the Key: close it (browser, signing tools) and retry"},
    {CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS", "another program holds a read-only session: close it and retry"},
    {CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS", "an administrator (SO) session is open on the Key: close it and retry"},
    {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID", "the signature does not verify"},
    {CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE", "the signature has the wrong length"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE", "the Key needs more properties for this object"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT", "the Key refused this combination of properties"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", "no Key is in the reader: plug it in (is it pushed all the way in?)"},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", "the Key is not recognised: it may not be initialised (`ukey init`), or its driver is not configured"},
    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED", "the Key is write-protected"},
    {CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID", "the unwrapping key is not on the Key"},
    {CKR_UNWRAPPING_KEY_SIZE_RANGE, "CKR_UNWRAPPING_KEY_SIZE_RANGE", "the unwrapping key has an unsupported size"},
    {CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT", "the unwrapping key cannot be used for this"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN", "already logged in to the Key"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", "this needs the PIN: log in first"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED", "the Key has no user PIN yet: set one with `ukey pin unlock` (needs the SO PIN) or `ukey init`"},
    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID", "unknown kind of user"},
    {CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN", "another user (the SO or the user) is logged in to the Key: log out first"},
    {CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES", "too many kinds of users are logged in"},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID", "the wrapped key is damaged"},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE", "the wrapped key has the wrong length"},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID", "the wrapping key is not on the Key"},
    {CKR_WRAPPING_KEY_SIZE_RANGE, "CKR_WRAPPING_KEY_SIZE_RANGE", "the wrapping key has an unsupported size"},
    {CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT", "the wrapping key cannot be used for this"},
    {CKR_RANDOM_SEED_NOT_SUPPORTED, "CKR_RANDOM_SEED_NOT_SUPPORTED", "the Key does not take random seeds"},
    {CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG", "the Key has no random number generator"},
    {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID", "the Key does not support that curve or those parameters"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL", "an answer from the Key did not fit: retry"},
    {CKR_SAVED_STATE_INVALID, "CKR_SAVED_STATE_INVALID", "the saved state is invalid"},
    {CKR_INFORMATION_SENSITIVE, "CKR_INFORMATION_SENSITIVE", "that information is secret"},
    {CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE", "the state cannot be saved"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED", "the Key's driver was not started: this is a bug, please report it"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED", "the Key's driver was already started"},
    {CKR_MUTEX_BAD, "CKR_MUTEX_BAD", "a lock inside the Key's driver failed"},
    {CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED", "a lock inside the Key's driver failed"},
    {CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED", "the Key refused: it may have been cancelled on the Key itself"},
};
} // namespace

std::string ckr_name(CK_RV rv)
{
    return ukey::ckr_name(rv);
}

std::string explain(CK_RV rv)
{
    for (const Entry& e : entries)
        if (e.rv == rv)
            return e.sentence;
    if (rv >= CKR_VENDOR_DEFINED)
        return "the Key's driver reported its own error " + ckr_name(rv) + ": see its documentation";
    return "the Key reported the unexpected error " + ckr_name(rv);
}

} // namespace ukey::client
