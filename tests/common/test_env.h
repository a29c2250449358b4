// Paths and environment shared by tests: where the source tree and build tree are,
// and where built programs (donagated, simulators) live.
#pragma once
#include <string>

namespace donagate::testing {

// Absolute path of a file under the source tree, e.g. SourcePath("config/donagate.example.toml").
std::string SourcePath(const std::string& relative);
// Absolute path of a built program or file under the build tree, e.g. BinaryPath("daemon/donagated").
std::string BinaryPath(const std::string& relative);
// A fresh empty directory under $TMPDIR, removed by nobody (tests leave evidence on failure).
std::string MakeTempDir(const std::string& hint);
// A TCP port on 127.0.0.1 that was free when asked.
int FreeTcpPort();

}  // namespace donagate::testing
