#!/usr/bin/env bash
# Carrier Billing end to end with two_step = true (preparePayment → confirmPayment): see
# carrier_billing_test.sh, which this runs with CB_TWO_STEP=1.
set -euo pipefail
CB_TWO_STEP=1 exec bash "$(dirname "$0")/carrier_billing_test.sh"
