// Placeholders until the certificate, key and CSR commands land.
#include "cli.h"

namespace ukey::cli {

void add_cert(CLI::App&, Context&) {}
void add_key(CLI::App&, Context&) {}
void add_csr(CLI::App&, Context&) {}

} // namespace ukey::cli
