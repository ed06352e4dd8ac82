// Constants of ukey-test-spy (spy.cpp), shared with the tests that read its
// log. TEST-ONLY: see README.md.
#pragma once

// The PKCS#11 module the spy forwards to (required).
#define SPY_MODULE_ENV "SPY_MODULE"
// The file the spy appends its C_Login lines to (optional):
//   login <CK_USER_TYPE, decimal>     before the call is forwarded
//   rv <CK_RV, lower-case hex>        after the real module answered
#define SPY_LOG_ENV "SPY_LOG"
// If "1": C_Login writes its "login" line, then _exit(SPY_EXIT_IN_LOGIN_CODE)s
// without forwarding, like a process killed while the PIN is on its way.
#define SPY_EXIT_IN_LOGIN_ENV "SPY_EXIT_IN_LOGIN"
#define SPY_EXIT_IN_LOGIN_CODE 86
// If "1": C_Login writes its "login" line, then stops the process (SIGSTOP)
// before forwarding, like a process stuck in the middle of a PIN attempt.
#define SPY_STOP_IN_LOGIN_ENV "SPY_STOP_IN_LOGIN"
