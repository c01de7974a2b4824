/*
 * net/kafka.h: the Kafka protocol's constants as sluice speaks them: the API keys it
 * answers, Kafka's error codes by name, and the one table of API version ranges the
 * broker advertises in ApiVersions and accepts on every request (DESIGN §4: Kafka 2.3's
 * ranges, all non-flexible, so no request or response of an accepted version carries
 * KIP-482 tagged fields; every range is advertised from version 0, see struct
 * kafka_api_range). This module holds data and lookups only; it parses no bytes
 * (net/wire does) and answers no request (the API handlers do).
 *
 * Sources: API keys and names from Kafka's ApiKeys.java and the "apiKey" of each
 * clients/src/main/resources/common/message/XxxRequest.json; error codes and names from
 * Kafka's Errors.java (the protocol guide's "Error Codes" table), current names (code 6
 * is NOT_LEADER_OR_FOLLOWER, called NOT_LEADER_FOR_PARTITION before Kafka 2.7).
 */
#ifndef SLUICE_NET_KAFKA_H
#define SLUICE_NET_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* API keys sluice answers (the request header's api_key), plus DeleteGroups, which it
 * will answer once groups can be deleted; it is not advertised yet. */
enum kafka_api_key {
	KAFKA_API_PRODUCE = 0,
	KAFKA_API_FETCH = 1,
	KAFKA_API_LIST_OFFSETS = 2,
	KAFKA_API_METADATA = 3,
	KAFKA_API_OFFSET_COMMIT = 8,
	KAFKA_API_OFFSET_FETCH = 9,
	KAFKA_API_FIND_COORDINATOR = 10,
	KAFKA_API_JOIN_GROUP = 11,
	KAFKA_API_HEARTBEAT = 12,
	KAFKA_API_LEAVE_GROUP = 13,
	KAFKA_API_SYNC_GROUP = 14,
	KAFKA_API_DESCRIBE_GROUPS = 15,
	KAFKA_API_LIST_GROUPS = 16,
	KAFKA_API_SASL_HANDSHAKE = 17,
	KAFKA_API_API_VERSIONS = 18,
	KAFKA_API_CREATE_TOPICS = 19,
	KAFKA_API_DELETE_TOPICS = 20,
	KAFKA_API_INIT_PRODUCER_ID = 22,
	KAFKA_API_DESCRIBE_CONFIGS = 32,
	KAFKA_API_SASL_AUTHENTICATE = 36,
	KAFKA_API_CREATE_PARTITIONS = 37,
	KAFKA_API_DELETE_GROUPS = 42,
};

/* Kafka error codes (int16 on the wire), numbers exactly as Kafka's Errors.java. Every
 * code from -1 to 82 (Kafka 2.3's last, FENCED_INSTANCE_ID) has a name here so that a
 * log line can name whatever a handler or a peer produced. */
enum kafka_error {
	KERR_UNKNOWN_SERVER_ERROR = -1,
	KERR_NONE = 0,
	KERR_OFFSET_OUT_OF_RANGE = 1,
	KERR_CORRUPT_MESSAGE = 2,
	KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
	KERR_INVALID_FETCH_SIZE = 4,
	KERR_LEADER_NOT_AVAILABLE = 5,
	KERR_NOT_LEADER_OR_FOLLOWER = 6,
	KERR_REQUEST_TIMED_OUT = 7,
	KERR_BROKER_NOT_AVAILABLE = 8,
	KERR_REPLICA_NOT_AVAILABLE = 9,
	KERR_MESSAGE_TOO_LARGE = 10,
	KERR_STALE_CONTROLLER_EPOCH = 11,
	KERR_OFFSET_METADATA_TOO_LARGE = 12,
	KERR_NETWORK_EXCEPTION = 13,
	KERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
	KERR_COORDINATOR_NOT_AVAILABLE = 15,
	KERR_NOT_COORDINATOR = 16,
	KERR_INVALID_TOPIC_EXCEPTION = 17,
	KERR_RECORD_LIST_TOO_LARGE = 18,
	KERR_NOT_ENOUGH_REPLICAS = 19,
	KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
	KERR_INVALID_REQUIRED_ACKS = 21,
	KERR_ILLEGAL_GENERATION = 22,
	KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
	KERR_INVALID_GROUP_ID = 24,
	KERR_UNKNOWN_MEMBER_ID = 25,
	KERR_INVALID_SESSION_TIMEOUT = 26,
	KERR_REBALANCE_IN_PROGRESS = 27,
	KERR_INVALID_COMMIT_OFFSET_SIZE = 28,
	KERR_TOPIC_AUTHORIZATION_FAILED = 29,
	KERR_GROUP_AUTHORIZATION_FAILED = 30,
	KERR_CLUSTER_AUTHORIZATION_FAILED = 31,
	KERR_INVALID_TIMESTAMP = 32,
	KERR_UNSUPPORTED_SASL_MECHANISM = 33,
	KERR_ILLEGAL_SASL_STATE = 34,
	KERR_UNSUPPORTED_VERSION = 35,
	KERR_TOPIC_ALREADY_EXISTS = 36,
	KERR_INVALID_PARTITIONS = 37,
	KERR_INVALID_REPLICATION_FACTOR = 38,
	KERR_INVALID_REPLICA_ASSIGNMENT = 39,
	KERR_INVALID_CONFIG = 40,
	KERR_NOT_CONTROLLER = 41,
	KERR_INVALID_REQUEST = 42,
	KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
	KERR_POLICY_VIOLATION = 44,
	KERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
	KERR_DUPLICATE_SEQUENCE_NUMBER = 46,
	KERR_INVALID_PRODUCER_EPOCH = 47,
	KERR_INVALID_TXN_STATE = 48,
	KERR_INVALID_PRODUCER_ID_MAPPING = 49,
	KERR_INVALID_TRANSACTION_TIMEOUT = 50,
	KERR_CONCURRENT_TRANSACTIONS = 51,
	KERR_TRANSACTION_COORDINATOR_FENCED = 52,
	KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
	KERR_SECURITY_DISABLED = 54,
	KERR_OPERATION_NOT_ATTEMPTED = 55,
	KERR_KAFKA_STORAGE_ERROR = 56,
	KERR_LOG_DIR_NOT_FOUND = 57,
	KERR_SASL_AUTHENTICATION_FAILED = 58,
	KERR_UNKNOWN_PRODUCER_ID = 59,
	KERR_REASSIGNMENT_IN_PROGRESS = 60,
	KERR_DELEGATION_TOKEN_AUTH_DISABLED = 61,
	KERR_DELEGATION_TOKEN_NOT_FOUND = 62,
	KERR_DELEGATION_TOKEN_OWNER_MISMATCH = 63,
	KERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64,
	KERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65,
	KERR_DELEGATION_TOKEN_EXPIRED = 66,
	KERR_INVALID_PRINCIPAL_TYPE = 67,
	KERR_NON_EMPTY_GROUP = 68,
	KERR_GROUP_ID_NOT_FOUND = 69,
	KERR_FETCH_SESSION_ID_NOT_FOUND = 70,
	KERR_INVALID_FETCH_SESSION_EPOCH = 71,
	KERR_LISTENER_NOT_FOUND = 72,
	KERR_TOPIC_DELETION_DISABLED = 73,
	KERR_FENCED_LEADER_EPOCH = 74,
	KERR_UNKNOWN_LEADER_EPOCH = 75,
	KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
	KERR_STALE_BROKER_EPOCH = 77,
	KERR_OFFSET_NOT_AVAILABLE = 78,
	KERR_MEMBER_ID_REQUIRED = 79,
	KERR_PREFERRED_LEADER_NOT_AVAILABLE = 80,
	KERR_GROUP_MAX_SIZE_REACHED = 81,
	KERR_FENCED_INSTANCE_ID = 82,
};

/* Lowest and highest code kafka_error_name() knows. */
#define KAFKA_ERROR_MIN KERR_UNKNOWN_SERVER_ERROR
#define KAFKA_ERROR_MAX KERR_FENCED_INSTANCE_ID

/*
 * One advertised API: the versions of API_KEY sluice accepts, inclusive, and the lowest
 * version it advertises in ApiVersions, which is 0 for every API although some accept
 * only higher versions. Old librdkafka releases (Debian 12's 2.0.2, src/rdkafka_feature.c)
 * decide which broker features exist by looking for fixed versions inside the
 * advertised ranges: compression needs Produce v0 in the range, the consumer-group
 * feature JoinGroup v0, and so on; a range starting above those versions turns the
 * features off (librdkafka issues #4948, #4956; Kafka 4.0 worked around the same in
 * PR #18727). Kafka 2.3 itself advertised these minimums. Clients pick the highest
 * version both sides know, so none of them asks for a version below the accepted
 * minimum in practice; one that does is treated as any unsupported version.
 */
struct kafka_api_range {
	int16_t api_key;		/* enum kafka_api_key */
	int16_t min_version;		/* lowest accepted version */
	int16_t max_version;		/* highest accepted (and advertised) version */
	int16_t advertised_min_version; /* lowest advertised version, <= min_version */
};

/* Kafka's name for error CODE, as in Errors.java ("UNKNOWN_TOPIC_OR_PARTITION", "NONE"),
 * or "UNRECOGNIZED_ERROR_CODE" for a code outside [KAFKA_ERROR_MIN, KAFKA_ERROR_MAX].
 * Never NULL; the string is static. */
const char *kafka_error_name(int16_t code);

/* Kafka's name for API KEY, as in its message schemas ("Produce", "ApiVersions"), for
 * every key of Kafka 2.4 (0-47) whether sluice answers it or not, so a log line can name
 * what a client asked for; "Unknown" otherwise. Never NULL; the string is static. */
const char *kafka_api_name(int16_t key);

/* Number of advertised APIs (the entries of the ApiVersions response). */
size_t kafka_api_range_count(void);

/* The INDEX-th advertised API, 0 <= INDEX < kafka_api_range_count() (ASSERTed), in
 * ascending api_key order, which is the order the ApiVersions response lists them. */
const struct kafka_api_range *kafka_api_range_at(size_t index);

/* The advertised range of API KEY, or NULL when sluice does not advertise that key (an
 * unknown key or one it does not answer, such as DeleteGroups for now). */
const struct kafka_api_range *kafka_api_range_find(int16_t key);

/* True when KEY is advertised and VERSION lies within its accepted range (min_version
 * to max_version; a version advertised below min_version is not accepted). A request
 * for which this is false must never be parsed with a guessed layout: ApiVersions
 * answers it with KERR_UNSUPPORTED_VERSION and its v0-shaped list (DESIGN §4); for
 * other keys the connection layer decides. */
bool kafka_api_version_supported(int16_t key, int16_t version);

#endif
