// Console users in the database (console_user, migration 0011): added, re-passworded and
// disabled by `donagatectl user ...`, read at login. Roles: finance (read, reconcile, request
// reversals), approver (decide reversal requests), ops (pause/resume through the daemon's admin
// API), admin (users). Every call writes its console_audit row in the same transaction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "billing/store/pg.h"

namespace donagate::console {

inline const std::vector<std::string>& KnownRoles() {
  static const std::vector<std::string> roles = {"finance", "approver", "ops", "admin"};
  return roles;
}

struct User {
  int64_t id = 0;
  std::string name;
  std::vector<std::string> roles;
  bool disabled = false;
  bool Has(const std::string& role) const;
};

// Parses "finance,approver" into roles; false with `error` naming an unknown role.
bool ParseRoles(const std::string& text, std::vector<std::string>* roles, std::string* error);

// Each returns a permanent status with one plain sentence on refusal ("user anna exists",
// "no user anna", "a password needs at least 10 characters"). `actor` and `from` go to the
// audit row (e.g. the shell user and "donagatectl").
billing::StoreStatus AddUser(billing::pg::Connection& conn, const std::string& name, const std::string& password,
                             const std::vector<std::string>& roles, const std::string& actor,
                             const std::string& from);
billing::StoreStatus SetPassword(billing::pg::Connection& conn, const std::string& name, const std::string& password,
                                 const std::string& actor, const std::string& from);
// Disables the user and ends their sessions.
billing::StoreStatus DisableUser(billing::pg::Connection& conn, const std::string& name, const std::string& actor,
                                 const std::string& from);

// Appends one console_audit row (outcome "ok", "refused" or "failed").
billing::StoreStatus Audit(billing::pg::Connection& conn, const std::string& actor, const std::string& action,
                           const std::string& detail, const std::string& remote_addr, const std::string& outcome);

}  // namespace donagate::console
