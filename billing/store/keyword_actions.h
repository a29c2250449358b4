// The statements of the keyword flows (KeywordAction in store.h), run inside IngestBatch's
// transaction for the items that carry one, and the confirmation expiry sweep. Internal to
// billing/store: kept apart from store.cc so the hot ingest statements stay as they are.
#pragma once

#include <vector>

#include "billing/store/pg.h"
#include "billing/store/store.h"

namespace donagate::billing::internal {

// For every item i with a keyword action whose message was stored (results[i] not a
// duplicate): the action's statements, in item order. Fills results[i].confirmed_donation_id.
StoreStatus ApplyKeywordActions(pg::Connection& conn, const std::string& instance,
                                const std::vector<IngestItem>& items, std::vector<IngestResult>* results);

// Store::ExpireConfirmations, in a transaction of its own.
StoreStatus ExpireConfirmations(pg::Connection& conn, const std::string& instance, int64_t* expired);

}  // namespace donagate::billing::internal
