// --url: a TLS handshake with the site, as far as its request for a client
// certificate (no certificate is sent: the handshake stops there).
#pragma once

#include "doctor.h"

namespace ukey::cli::doctor {

// An https:// URL; false for anything else (the caller says so).
bool probe_url_valid(const std::string& url);

// Connects (5 s for the whole), reads the acceptable CA names of the
// server's CertificateRequest (64 at most), and hangs up.
ServerFacts probe_server(const std::string& url);

} // namespace ukey::cli::doctor
