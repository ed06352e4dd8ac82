// ukey-bench's private working folder: a ukeytest::TempDir (the test
// suites' tests/support/ukeytest/files.h, mode 0700, removed on exit) under
// $TMPDIR or /tmp, the configuration files written there (mode 0600), and
// the variables that point SoftHSM2 and ukey at them.
#pragma once

#include "ukeytest/files.h"

#include <string>

namespace ukey_bench {

using ukeytest::make_private_dir;
using ukeytest::TempDir;
using ukeytest::toml_string;
using ukeytest::write_file;

// $TMPDIR (secure_getenv: ukey-bench may run with privileges) or /tmp.
std::string temp_base();
void set_env(const char* name, const std::string& value);

}  // namespace ukey_bench
