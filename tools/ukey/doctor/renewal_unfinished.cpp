// P8: a renewal or enrolment that stopped midway (Key pulled out, crash,
// CA gone): its journal is still there.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(renewal_unfinished, "P8.renewal-unfinished", "P8", "a renewal or enrolment stopped midway",
                      "the Key was pulled out, the computer or ukey stopped, or the CA did not answer while the new "
                      "certificate was being made",
                      "`ukey renew --resume` with the Key plugged in finishes or undoes it; the old certificate works "
                      "meanwhile")
{
    if (!k.journal_error.empty()) {
        out.push_back(finding(renewal_unfinished, Severity::problem, &k,
                              "a renewal of this Key left a journal that cannot be read (" +
                                  escape::printable(k.journal_error) + ")",
                              "keep the file " + escape::printable(k.journal_path) +
                                  " for your helpdesk; `ukey renew --resume` says what it can do"));
        return;
    }
    if (!k.journal)
        return;
    const auto& j = *k.journal;
    const bool written = j.reached(client::Step::cert_written);
    Finding& fd = out.emplace_back(finding(renewal_unfinished, Severity::problem, &k,
                          std::string(j.operation == "enroll" ? "an enrolment" : "a renewal") +
                              " of this Key stopped after the step '" + client::step_name(j.step()) + "' (" +
                              escape::printable(j.steps.empty() ? std::string("?") : j.steps.back().time) + ")" +
                              (written ? ": the new certificate is on the Key, the old one not yet retired"
                                       : ": the new certificate is not on the Key yet; the old one still works"),
                          "finish it with the Key plugged in: " + command(f, k, "ukey renew --resume")));
    fd.remedy = {"ukey", "renew", "--resume"};
    if (const std::string key = key_arg(f, k); !key.empty())
        fd.remedy.push_back(key);
    fd.remedy_needs_pin = true;
}

} // namespace ukey::cli::doctor
