// Passwords and secrets of the console: Argon2id hashes (libsodium crypto_pwhash_str, the
// "$argon2id$v=19$m=...,t=...,p=...$salt$hash" encoding, so the parameters travel with each
// hash), random tokens for sessions and CSRF, SHA-256 of session tokens (the database keeps
// only those), and constant-time comparison.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace donagate::console {

// Initialises libsodium (idempotent, thread-safe). False when the library cannot start.
bool InitCrypto();

// An Argon2id hash of `password` (interactive limits: 2 passes, 64 MiB). std::nullopt only
// when the machine cannot give the memory.
std::optional<std::string> HashPassword(std::string_view password);
// True when `password` matches `hash` (made by HashPassword). Takes the time of one hash
// whatever the answer.
bool VerifyPassword(std::string_view password, const std::string& hash);

// Why a new password is refused ("" when acceptable): at least 10 characters, at most 1024.
std::string PasswordProblem(std::string_view password);

// `bytes` random bytes as lower-case hex (2 * bytes characters).
std::string RandomHex(size_t bytes);
// SHA-256 of `data` (32 raw bytes).
std::string Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);
// Equal length and content, in time independent of where they differ.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace donagate::console
