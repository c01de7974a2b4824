/*
 * net/kafka.c: the tables behind net/kafka.h: Kafka's error names, API names, and the
 * API version ranges sluice accepts and advertises. Pure data and lookups, no state,
 * safe from any thread. See net/kafka.h for the sources each table follows.
 */
#include "net/kafka.h"

#include "core/assert.h"

/* Indexed by code - KAFKA_ERROR_MIN; names as in Kafka's Errors.java. */
static const char *const kafka_error_names[] = {
    "UNKNOWN_SERVER_ERROR",
    "NONE",
    "OFFSET_OUT_OF_RANGE",
    "CORRUPT_MESSAGE",
    "UNKNOWN_TOPIC_OR_PARTITION",
    "INVALID_FETCH_SIZE",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER",
    "REQUEST_TIMED_OUT",
    "BROKER_NOT_AVAILABLE",
    "REPLICA_NOT_AVAILABLE",
    "MESSAGE_TOO_LARGE",
    "STALE_CONTROLLER_EPOCH",
    "OFFSET_METADATA_TOO_LARGE",
    "NETWORK_EXCEPTION",
    "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE",
    "NOT_COORDINATOR",
    "INVALID_TOPIC_EXCEPTION",
    "RECORD_LIST_TOO_LARGE",
    "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "INVALID_REQUIRED_ACKS",
    "ILLEGAL_GENERATION",
    "INCONSISTENT_GROUP_PROTOCOL",
    "INVALID_GROUP_ID",
    "UNKNOWN_MEMBER_ID",
    "INVALID_SESSION_TIMEOUT",
    "REBALANCE_IN_PROGRESS",
    "INVALID_COMMIT_OFFSET_SIZE",
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "INVALID_TIMESTAMP",
    "UNSUPPORTED_SASL_MECHANISM",
    "ILLEGAL_SASL_STATE",
    "UNSUPPORTED_VERSION",
    "TOPIC_ALREADY_EXISTS",
    "INVALID_PARTITIONS",
    "INVALID_REPLICATION_FACTOR",
    "INVALID_REPLICA_ASSIGNMENT",
    "INVALID_CONFIG",
    "NOT_CONTROLLER",
    "INVALID_REQUEST",
    "UNSUPPORTED_FOR_MESSAGE_FORMAT",
    "POLICY_VIOLATION",
    "OUT_OF_ORDER_SEQUENCE_NUMBER",
    "DUPLICATE_SEQUENCE_NUMBER",
    "INVALID_PRODUCER_EPOCH",
    "INVALID_TXN_STATE",
    "INVALID_PRODUCER_ID_MAPPING",
    "INVALID_TRANSACTION_TIMEOUT",
    "CONCURRENT_TRANSACTIONS",
    "TRANSACTION_COORDINATOR_FENCED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "SECURITY_DISABLED",
    "OPERATION_NOT_ATTEMPTED",
    "KAFKA_STORAGE_ERROR",
    "LOG_DIR_NOT_FOUND",
    "SASL_AUTHENTICATION_FAILED",
    "UNKNOWN_PRODUCER_ID",
    "REASSIGNMENT_IN_PROGRESS",
    "DELEGATION_TOKEN_AUTH_DISABLED",
    "DELEGATION_TOKEN_NOT_FOUND",
    "DELEGATION_TOKEN_OWNER_MISMATCH",
    "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
    "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
    "DELEGATION_TOKEN_EXPIRED",
    "INVALID_PRINCIPAL_TYPE",
    "NON_EMPTY_GROUP",
    "GROUP_ID_NOT_FOUND",
    "FETCH_SESSION_ID_NOT_FOUND",
    "INVALID_FETCH_SESSION_EPOCH",
    "LISTENER_NOT_FOUND",
    "TOPIC_DELETION_DISABLED",
    "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH",
    "UNSUPPORTED_COMPRESSION_TYPE",
    "STALE_BROKER_EPOCH",
    "OFFSET_NOT_AVAILABLE",
    "MEMBER_ID_REQUIRED",
    "PREFERRED_LEADER_NOT_AVAILABLE",
    "GROUP_MAX_SIZE_REACHED",
    "FENCED_INSTANCE_ID",
};
_Static_assert(sizeof(kafka_error_names) / sizeof(kafka_error_names[0]) ==
		   KAFKA_ERROR_MAX - KAFKA_ERROR_MIN + 1,
	       "one name per error code, none missing");

/* Indexed by API key; Kafka's message names (ApiKeys.java, Kafka 2.4: keys 0-47). */
static const char *const kafka_api_names[] = {
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "WriteTxnMarkers",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "AlterReplicaLogDirs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "CreateDelegationToken",
    "RenewDelegationToken",
    "ExpireDelegationToken",
    "DescribeDelegationToken",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
};
_Static_assert(sizeof(kafka_api_names) / sizeof(kafka_api_names[0]) == 48,
	       "API names for keys 0-47");

/*
 * The accepted ranges, exactly DESIGN §4: Kafka 2.3's maxima, with minima raised where
 * sluice needs message format v2 (Produce 3, Fetch 4) or a field older versions lack.
 * Kafka 2.3 predates KIP-482, so none of these versions is flexible: each maximum lies
 * below its API's first flexible version in Kafka's message schemas (for example
 * JoinGroupRequest.json "flexibleVersions": "6+", MetadataRequest.json "9+",
 * ApiVersionsRequest.json "3+"), and no accepted request or response carries tagged
 * fields. Every API is advertised from version 0 (struct kafka_api_range says why).
 * Sorted by api_key, the order the ApiVersions response lists them in; 22 entries, so
 * kafka_api_range_find() scans. Entries: {api_key, accepted min, accepted max,
 * advertised min}.
 */
static const struct kafka_api_range kafka_api_ranges[] = {
    {KAFKA_API_PRODUCE, 3, 7, 0},	    {KAFKA_API_FETCH, 4, 11, 0},
    {KAFKA_API_LIST_OFFSETS, 1, 5, 0},	    {KAFKA_API_METADATA, 0, 8, 0},
    {KAFKA_API_OFFSET_COMMIT, 2, 7, 0},	    {KAFKA_API_OFFSET_FETCH, 1, 5, 0},
    {KAFKA_API_FIND_COORDINATOR, 0, 2, 0},  {KAFKA_API_JOIN_GROUP, 1, 5, 0},
    {KAFKA_API_HEARTBEAT, 0, 3, 0},	    {KAFKA_API_LEAVE_GROUP, 0, 2, 0},
    {KAFKA_API_SYNC_GROUP, 0, 3, 0},	    {KAFKA_API_DESCRIBE_GROUPS, 0, 3, 0},
    {KAFKA_API_LIST_GROUPS, 0, 2, 0},	    {KAFKA_API_SASL_HANDSHAKE, 0, 1, 0},
    {KAFKA_API_API_VERSIONS, 0, 2, 0},	    {KAFKA_API_CREATE_TOPICS, 0, 3, 0},
    {KAFKA_API_DELETE_TOPICS, 0, 3, 0},	    {KAFKA_API_INIT_PRODUCER_ID, 0, 1, 0},
    {KAFKA_API_DESCRIBE_CONFIGS, 0, 2, 0},  {KAFKA_API_SASL_AUTHENTICATE, 0, 1, 0},
    {KAFKA_API_CREATE_PARTITIONS, 0, 1, 0}, {KAFKA_API_DELETE_GROUPS, 0, 1, 0},
};

#define KAFKA_API_RANGE_COUNT (sizeof(kafka_api_ranges) / sizeof(kafka_api_ranges[0]))
/* DESIGN §4's 21 APIs and DeleteGroups 0-1 (issue 6; v2+ is flexible). */
_Static_assert(KAFKA_API_RANGE_COUNT == 22, "DESIGN §4's 21 APIs and DeleteGroups");

const char *kafka_error_name(int16_t code)
{
	if (code < KAFKA_ERROR_MIN || code > KAFKA_ERROR_MAX)
		return "UNRECOGNIZED_ERROR_CODE";
	return kafka_error_names[code - KAFKA_ERROR_MIN];
}

const char *kafka_api_name(int16_t key)
{
	if (key < 0 || (size_t)key >= sizeof(kafka_api_names) / sizeof(kafka_api_names[0]))
		return "Unknown";
	return kafka_api_names[key];
}

size_t kafka_api_range_count(void)
{
	return KAFKA_API_RANGE_COUNT;
}

const struct kafka_api_range *kafka_api_range_at(size_t index)
{
	ASSERT(index < KAFKA_API_RANGE_COUNT);
	return &kafka_api_ranges[index];
}

const struct kafka_api_range *kafka_api_range_find(int16_t key)
{
	for (size_t i = 0; i < KAFKA_API_RANGE_COUNT; i++) {
		if (kafka_api_ranges[i].api_key == key)
			return &kafka_api_ranges[i];
	}
	return NULL;
}

bool kafka_api_version_supported(int16_t key, int16_t version)
{
	const struct kafka_api_range *range = kafka_api_range_find(key);
	return range && version >= range->min_version && version <= range->max_version;
}
