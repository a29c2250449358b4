#include "console/users.h"

#include <algorithm>

#include "console/password.h"

namespace donagate::console {

using billing::StoreStatus;
using billing::pg::Params;
using billing::pg::Result;

bool User::Has(const std::string& role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

bool ParseRoles(const std::string& text, std::vector<std::string>* roles, std::string* error) {
  roles->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string r = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!r.empty()) {
      if (std::find(KnownRoles().begin(), KnownRoles().end(), r) == KnownRoles().end()) {
        *error = "unknown role \"" + r + "\" (roles: finance, approver, ops, admin)";
        return false;
      }
      if (std::find(roles->begin(), roles->end(), r) == roles->end()) roles->push_back(r);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (roles->empty()) {
    *error = "give at least one role (finance, approver, ops, admin)";
    return false;
  }
  return true;
}

StoreStatus Audit(billing::pg::Connection& conn, const std::string& actor, const std::string& action,
                  const std::string& detail, const std::string& remote_addr, const std::string& outcome) {
  return conn.Exec("INSERT INTO console_audit (actor, action, detail, remote_addr, outcome) VALUES ($1, $2, $3, $4, $5)",
                   Params().Text(actor).Text(action).Text(detail).Text(remote_addr).Text(outcome));
}

namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '.' || c == '_' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

StoreStatus AddUser(billing::pg::Connection& conn, const std::string& name, const std::string& password,
                    const std::vector<std::string>& roles, const std::string& actor, const std::string& from) {
  if (!ValidName(name))
    return StoreStatus::Permanent("a user name is 1 to 64 lower-case letters, digits, '.', '_' or '-'");
  if (auto why = PasswordProblem(password); !why.empty()) return StoreStatus::Permanent(why);
  auto hash = HashPassword(password);
  if (!hash) return StoreStatus::Permanent("cannot hash the password (out of memory?)");
  billing::pg::Transaction tx(conn);
  StoreStatus st = tx.Begin();
  if (!st.ok()) return st;
  Result r;
  st = conn.Exec("INSERT INTO console_user (name, password_hash, roles) VALUES ($1, $2, $3::text[]) "
                 "ON CONFLICT (name) DO NOTHING RETURNING id",
                 Params().Text(name).Text(*hash).TextArray(roles), &r);
  if (!st.ok()) return st;
  if (r.rows() == 0) return StoreStatus::Permanent("user " + name + " exists");
  std::string list;
  for (auto& x : roles) list += (list.empty() ? "" : ",") + x;
  st = Audit(conn, actor, "user_add", name + " roles=" + list, from, "ok");
  if (!st.ok()) return st;
  return tx.Commit();
}

StoreStatus SetPassword(billing::pg::Connection& conn, const std::string& name, const std::string& password,
                        const std::string& actor, const std::string& from) {
  if (auto why = PasswordProblem(password); !why.empty()) return StoreStatus::Permanent(why);
  auto hash = HashPassword(password);
  if (!hash) return StoreStatus::Permanent("cannot hash the password (out of memory?)");
  billing::pg::Transaction tx(conn);
  StoreStatus st = tx.Begin();
  if (!st.ok()) return st;
  Result r;
  st = conn.Exec("UPDATE console_user SET password_hash = $2, updated_at = now() WHERE name = $1 RETURNING id",
                 Params().Text(name).Text(*hash), &r);
  if (!st.ok()) return st;
  if (r.rows() == 0) return StoreStatus::Permanent("no user " + name);
  // A new password ends the sessions opened with the old one.
  st = conn.Exec("DELETE FROM console_session WHERE user_id = $1", Params().Int(r.Int64(0, 0)));
  if (!st.ok()) return st;
  st = Audit(conn, actor, "user_passwd", name, from, "ok");
  if (!st.ok()) return st;
  return tx.Commit();
}

StoreStatus DisableUser(billing::pg::Connection& conn, const std::string& name, const std::string& actor,
                        const std::string& from) {
  billing::pg::Transaction tx(conn);
  StoreStatus st = tx.Begin();
  if (!st.ok()) return st;
  Result r;
  st = conn.Exec("UPDATE console_user SET disabled = true, updated_at = now() WHERE name = $1 RETURNING id",
                 Params().Text(name), &r);
  if (!st.ok()) return st;
  if (r.rows() == 0) return StoreStatus::Permanent("no user " + name);
  st = conn.Exec("DELETE FROM console_session WHERE user_id = $1", Params().Int(r.Int64(0, 0)));
  if (!st.ok()) return st;
  st = Audit(conn, actor, "user_disable", name, from, "ok");
  if (!st.ok()) return st;
  return tx.Commit();
}

}  // namespace donagate::console
