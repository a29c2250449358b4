// `donagatectl charging-check --operator X`: a capabilities/health exchange with the operator's
// configured charging backend that charges nobody, for an integration engineer's first day.
//  - diameter: connect every peer, CER/CEA, then one DWR/DWA each; one line per peer.
//  - http: a status query for a key that cannot exist (never a charge); "not_found" proves the
//    URL, TLS and token are right.
//  - carrier_billing: an OAuth 2.0 client-credentials grant at token_url, then retrievePayments
//    of a clientCorrelator no donation has; "not found" proves URL, TLS and credentials.
//  - operator_billed / in_process: nothing to reach; says so.
// Exit codes: 0 reachable and healthy, 1 not, 2 usage/config error.
#pragma once

#include <ostream>
#include <string>

#include "config/config.h"

namespace donagate::ctl {

int ChargingCheck(const config::Config& config, const std::string& operator_name, std::ostream& out,
                  std::ostream& err);

}  // namespace donagate::ctl
