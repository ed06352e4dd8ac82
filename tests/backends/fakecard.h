// Constants of ukey-test-fakecard (fakecard.cpp), shared with the tests that
// drive it. TEST-ONLY: see README.md.
#pragma once

// The one slot and its token.
#define FAKECARD_SLOT_ID 7UL
#define FAKECARD_LABEL "fakecard"
#define FAKECARD_MANUFACTURER "ukey tests"
#define FAKECARD_MODEL "fakecard"
#define FAKECARD_SERIAL "FAKE0001"

// PINs of a card whose state file does not exist yet.
#define FAKECARD_DEFAULT_USER_PIN "card-user-2468"
#define FAKECARD_DEFAULT_SO_PIN "card-so-13579"

// The card locks a PIN after this many wrong tries in a row.
#define FAKECARD_MAX_TRIES 3U

// PIN length limits the card reports (ulMinPinLen / ulMaxPinLen).
#define FAKECARD_MIN_PIN 4UL
#define FAKECARD_MAX_PIN 32UL

// Environment variable naming the state file (required). The file holds one
// line, e.g.
//   fakecard 1 user_left=3 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579
// and is read and rewritten under flock() on every PIN operation, so several
// processes loading the card share one counter like they would share a card.
// The line may end with " fault=NAME": C_GetTokenInfo then answers the
// error NAME names instead of the token (a broken card), one of
// device_error, device_memory, device_removed, token_not_recognized.
#define FAKECARD_STATE_ENV "FAKECARD_STATE"

// Optional: "N" makes every Nth C_GetTokenInfo of the process answer CKR_OK
// with a blank serial number, as SoftHSM2 2.6.1 sometimes does when several
// processes use one token. Read on every call.
#define FAKECARD_SERIAL_GLITCH_ENV "FAKECARD_SERIAL_GLITCH_EVERY"

// Optional: a FIFO. A blocking C_WaitForSlotEvent (flags 0) then reads one
// line from it and reports a slot event on FAKECARD_SLOT_ID, like a card
// module whose reader saw a change; without it, the blocking form is
// CKR_FUNCTION_NOT_SUPPORTED as in SoftHSM2. For ukeyd's backend waiters.
#define FAKECARD_EVENTS_ENV "FAKECARD_EVENTS"

// Optional: the token's label, manufacturerID, model and serialNumber and the
// slot's description, any bytes (cut to the field's size), instead of the
// constants above: a hostile or badly encoded card (escape tests). Read on
// every call.
#define FAKECARD_TOKEN_LABEL_ENV "FAKECARD_TOKEN_LABEL"
#define FAKECARD_TOKEN_MANUFACTURER_ENV "FAKECARD_TOKEN_MANUFACTURER"
#define FAKECARD_TOKEN_MODEL_ENV "FAKECARD_TOKEN_MODEL"
#define FAKECARD_TOKEN_SERIAL_ENV "FAKECARD_TOKEN_SERIAL"
#define FAKECARD_READER_ENV "FAKECARD_READER"
