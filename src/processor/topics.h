// Topic names of the pipeline, shared by every role.
#pragma once

namespace settle::processor {

inline constexpr const char* kMerchantsTopic = "merchants";        // compacted, key merchant_id
inline constexpr const char* kEventsTopic = "events";              // key merchant_id
inline constexpr const char* kTasksTopic = "settlement-tasks";     // key merchant_id
inline constexpr const char* kStatusTopic = "status";              // key merchant_id
inline constexpr const char* kDeadLettersTopic = "dead-letters";   // records no role could handle

// Record headers.
inline constexpr const char* kSourceHeader = "source";            // "events.ndjson:12"
inline constexpr const char* kTraceparentHeader = "traceparent";  // W3C trace context
inline constexpr const char* kEventIdHeader = "event_id";         // the event's id (its key is the merchant)

}  // namespace settle::processor
