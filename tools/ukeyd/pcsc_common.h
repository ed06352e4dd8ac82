// What ukeyd's PC/SC watcher (pcsc_watch.cpp) and the harness's probe
// (tests/pcsc/probe.cpp, its tested model) share: header-only, so that the
// probe still builds on its own (tests/pcsc standalone).
#pragma once

#include <PCSC/pcsclite.h>
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <map>
#include <string>
#include <vector>

namespace ukey::pcsc {

// The pseudo reader whose state changes when readers come or go.
inline constexpr char pnp_reader[] = "\\\\?PnP?\\Notification";

// What the watcher knows of one reader, by name.
struct Reader {
    DWORD state = SCARD_STATE_UNAWARE; // the last dwEventState, without CHANGED
    bool present = false;
    bool unusable = false; // listed by pcscd without any state (its driver failed)
};
using Readers = std::map<std::string, Reader>;

// The states for one SCardGetStatusChange: the PnP reader first, then every
// reader as last seen (an unusable one ignored), in the order of `readers`;
// they point into `readers`, which must not change meanwhile.
inline std::vector<SCARD_READERSTATE> wait_states(DWORD pnp_state, const Readers& readers)
{
    std::vector<SCARD_READERSTATE> st(1 + readers.size());
    st[0].szReader = pnp_reader;
    st[0].dwCurrentState = pnp_state;
    std::size_t i = 1;
    for (const auto& [name, r] : readers) {
        st[i].szReader = name.c_str();
        st[i].dwCurrentState = r.unusable ? SCARD_STATE_IGNORE : r.state;
        ++i;
    }
    return st;
}

// Whether the PnP reader's answer `s` says the reader list changed;
// pnp_state follows it, and `news` is set if its state is new.
inline bool list_changed(const SCARD_READERSTATE& s, DWORD& pnp_state, bool& news)
{
    if (!(s.dwEventState & SCARD_STATE_CHANGED))
        return false;
    const DWORD ns = s.dwEventState & ~DWORD{SCARD_STATE_CHANGED};
    news = news || ns != pnp_state;
    pnp_state = ns;
    return true;
}

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
