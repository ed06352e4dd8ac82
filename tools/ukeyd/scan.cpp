#include "scan.h"

#include "clock.h"
#include "child.h"
#include "expiry.h"

#include "client/certs.h"
#include "client/module.h"
#include "token/ckr_name.h"
#include "token/escape.h"
#include "client/x509.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>


namespace ukey::daemon {

using nlohmann::json;
using namespace ukey::client;

namespace {

json pin_json(CK_ULONG left, CK_ULONG max, bool locked)
{
    json j;
    j["tries_left"] = left == CK_UNAVAILABLE_INFORMATION ? json(nullptr) : json(left);
    j["max_tries"] = max == CK_UNAVAILABLE_INFORMATION ? json(nullptr) : json(max);
    j["locked"] = locked;
    return j;
}

json cert_json(const CertOnKey& c)
{
    json j;
    j["id"] = to_hex(c.id);
    j["label"] = c.label;
    X509Ptr x = c.parse();
    if (!x) {
        j["error"] = "not a readable X.509 certificate";
        return j;
    }
    CertDetails d = cert_details(x.get());
    j["subject"] = d.subject;
    j["issuer"] = d.issuer;
    j["serial"] = d.serial;
    j["fingerprint"] = to_hex(d.sha256);
    j["ca"] = d.is_ca;
    if (d.not_before) {
        j["not_before"] = iso8601(*d.not_before);
        j["not_before_unix"] = int64_t(*d.not_before);
    }
    if (d.not_after) {
        j["not_after"] = iso8601(*d.not_after);
        j["not_after_unix"] = int64_t(*d.not_after);
        j["days_left"] = days_left(*d.not_after, std::time(nullptr));
    }
    return j;
}

json key_json(const Module& m, const KeyInfo& k)
{
    json j;
    j["source"] = "backend";
    j["slot_id"] = k.slot;
    j["backend"] = k.backend_name();
    j["label"] = k.label();
    j["serial"] = k.serial();
    j["manufacturer"] = k.manufacturer();
    j["model"] = k.model();
    j["slot_description"] = k.reader();
    j["initialized"] = k.initialized();
    j["id"] = k.backend_name() + "/" + k.manufacturer() + "/" + k.model() + "/" + k.serial();
    const CK_FLAGS f = k.token.flags;
    json user = pin_json(CK_UNAVAILABLE_INFORMATION, CK_UNAVAILABLE_INFORMATION, f & CKF_USER_PIN_LOCKED);
    json so = pin_json(CK_UNAVAILABLE_INFORMATION, CK_UNAVAILABLE_INFORMATION, f & CKF_SO_PIN_LOCKED);
    if (k.pin) {
        user = pin_json(k.pin->userTriesLeft, k.pin->userMaxTries,
                        (f & CKF_USER_PIN_LOCKED) || k.pin->userTriesLeft == 0);
        so = pin_json(k.pin->soTriesLeft, k.pin->soMaxTries, (f & CKF_SO_PIN_LOCKED) || k.pin->soTriesLeft == 0);
    }
    user["must_change"] = bool(f & CKF_USER_PIN_TO_BE_CHANGED) ||
                          (k.pin && (k.pin->flags & UKEY_PIN_USER_MUST_CHANGE));
    user["initialized"] = bool(f & CKF_USER_PIN_INITIALIZED);
    j["user_pin"] = user;
    j["so_pin"] = so;
    json certs = json::array();
    if (k.initialized()) {
        // Certificates are public objects: no login, so no PIN is needed.
        auto s = Session::open(m, k.slot, false);
        if (!s) {
            j["error"] = s.error().message;
        } else if (auto cs = read_certificates(**s); !cs) {
            j["error"] = cs.error().message;
        } else {
            for (const auto& c : *cs)
                certs.push_back(cert_json(c));
        }
    }
    j["certificates"] = certs;
    return j;
}

} // namespace

int run_scan(const std::string& module_path)
{
    try {
        auto m = Module::load(module_path);
        if (!m) {
            std::cerr << "ukeyd scan: " << ukey::escape::printable(m.error().message) << "\n";
            return 2;
        }
        auto ids = (*m)->slots(false);
        if (!ids) {
            std::cerr << "ukeyd scan: " << ukey::escape::printable(ids.error().message) << "\n";
            return 2;
        }
        json slots = json::array(), keys = json::array();
        for (CK_SLOT_ID id : *ids) {
            CK_SLOT_INFO si{};
            json s;
            s["slot_id"] = id;
            if (CK_RV rv = (*m)->f()->C_GetSlotInfo(id, &si); rv != CKR_OK) {
                // Kept, with the error: the Keys of its backend are not taken
                // for removed (KeyTracker::scanned).
                s["error"] = "C_GetSlotInfo failed (" + ukey::ckr_name(rv) + ")";
                slots.push_back(std::move(s));
                continue;
            }
            s["description"] = text(si.slotDescription);
            s["manufacturer"] = text(si.manufacturerID);
            s["token"] = bool(si.flags & CKF_TOKEN_PRESENT);
            s["removable"] = bool(si.flags & CKF_REMOVABLE_DEVICE);
            s["hardware"] = bool(si.flags & CKF_HW_SLOT);
            if ((*m)->vendor()) {
                UKEY_SLOT_BACKEND b{};
                if ((*m)->vendor()->C_UkeyGetSlotBackend(id, &b) == CKR_OK)
                    s["backend"] = text(b.name);
            }
            if (si.flags & CKF_TOKEN_PRESENT) {
                auto k = key_info(**m, id);
                if (k) {
                    s["initialized"] = k->initialized();
                    s["label"] = k->label();
                    if (k->initialized())
                        keys.push_back(key_json(**m, *k));
                } else if (k.error().rv != CKR_TOKEN_NOT_PRESENT) {
                    s["error"] = k.error().message;
                }
            }
            slots.push_back(std::move(s));
        }
        json out{{"slots", slots}, {"keys", keys}};
        std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        std::cout.flush();
        return std::cout ? 0 : 2;
    } catch (const std::exception& e) {
        std::cerr << "ukeyd scan: " << ukey::escape::printable(e.what()) << "\n";
        return 2;
    }
}

Scanner::~Scanner()
{
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0)
        close(fd_);
}

void Scanner::maybe_start(double timeout_s)
{
    if (!wanted_ || pid_ > 0)
        return;
    wanted_ = false;
    Spawned c = spawn({exe_, "--scan"}, nullptr, true, false);
    if (c.pid < 0)
        return;
    pid_ = c.pid;
    fd_ = c.out;
    eof_ = false;
    status_.reset();
    timed_out_ = false;
    out_.clear();
    started_ms_ = now_ms();
    deadline_ms_ = mono_ms() + int64_t(timeout_s * 1000);
}

std::optional<ScanResult> Scanner::on_readable()
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd_, buf, sizeof buf);
        if (n > 0) {
            // A scan is a few KiB per Key; anything beyond 16 MiB is broken.
            if (out_.size() + size_t(n) <= (16u << 20))
                out_.append(buf, size_t(n));
            continue;
        }
        if (n == 0)
            eof_ = true;
        else if (errno == EINTR)
            continue;
        else if (errno != EAGAIN)
            eof_ = true;
        break;
    }
    if (eof_ && fd_ >= 0) {
        close(fd_);
        fd_ = -1;
    }
    return finish_if_done();
}

std::optional<ScanResult> Scanner::on_exit(int status)
{
    status_ = status;
    return finish_if_done();
}

std::optional<ScanResult> Scanner::on_timeout(int64_t mono)
{
    if (pid_ > 0 && !timed_out_ && mono >= deadline_ms_) {
        timed_out_ = true;
        kill(pid_, SIGKILL);
    }
    return std::nullopt;
}

std::optional<ScanResult> Scanner::finish_if_done()
{
    if (!status_ || !eof_)
        return std::nullopt;
    ScanResult r;
    r.started_ms = started_ms_;
    r.duration_ms = now_ms() - started_ms_;
    int st = *status_;
    if (timed_out_) {
        r.error = "the backend scan did not finish in time and was stopped: a backend module hangs "
                  "(check the Key's reader and the module named in the config)";
    } else if (WIFSIGNALED(st)) {
        r.error = std::string("the backend scan crashed (") + strsignal(WTERMSIG(st)) +
                  "): a backend module is broken; see the lines above";
    } else if (WEXITSTATUS(st) != 0) {
        r.error = "the backend scan failed (see the lines above)";
    } else {
        r.data = json::parse(out_, nullptr, false);
        if (r.data.is_discarded() || !r.data.is_object() || !r.data.contains("keys"))
            r.error = "the backend scan printed something unreadable";
        else
            r.ok = true;
    }
    pid_ = -1;
    out_.clear();
    status_.reset();
    return r;
}

} // namespace ukey::daemon
