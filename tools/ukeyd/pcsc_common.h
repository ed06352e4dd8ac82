// What ukeyd's PC/SC watcher (pcsc_watch.cpp) and the harness's probe
// (tests/pcsc/probe.cpp, its tested model) share: header-only, so that the
// probe still builds on its own (tests/pcsc standalone).
#pragma once

#include <PCSC/pcsclite.h>
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <string>

namespace ukey::pcsc {

// An ATR in upper-case hex.
inline std::string hex(const unsigned char* p, DWORD n)
{
    static const char d[] = "0123456789ABCDEF";
    std::string s;
    for (DWORD i = 0; i < n; ++i) {
        s += d[p[i] >> 4];
        s += d[p[i] & 15];
    }
    return s;
}

// Errors after which the context is useless: pcscd stopped, crashed or was
// restarted (the socket is gone or the connection broke).
inline bool service_lost(LONG rv)
{
    switch (rv) {
    case SCARD_E_NO_SERVICE:
    case SCARD_E_SERVICE_STOPPED:
    case SCARD_F_COMM_ERROR:
    case SCARD_E_INVALID_HANDLE:
    case SCARD_F_INTERNAL_ERROR:
    case SCARD_E_NO_MEMORY:
        return true;
    default:
        return false;
    }
}

} // namespace ukey::pcsc
