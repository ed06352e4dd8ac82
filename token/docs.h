// Where messages send a reader: the man pages (ukey(1), ukey.conf(5),
// ukeyd(8)) first; for what only the long documents say, the documentation
// folder as installed (UKEY_DOC_DIR of the build: share/doc/ukey under the
// prefix). Never the repository's docs/, which users do not have.
#pragma once

#ifndef UKEY_DOC_DIR
#define UKEY_DOC_DIR "/usr/share/doc/ukey"
#endif
// UKEY_DOC("pin-policy.md"): a string literal, for messages.
#define UKEY_DOC(name) UKEY_DOC_DIR "/" name
