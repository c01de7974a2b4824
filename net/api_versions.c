/*
 * net/api_versions.c: the ApiVersions handler (API key 18). Versions 0-2 are answered
 * with the list of every API sluice advertises (net/kafka's table: advertised minimum,
 * accepted maximum); any other version (librdkafka starts with v3, the first flexible
 * one) gets error 35 UNSUPPORTED_VERSION with the same list in the v0 layout, from
 * which the client learns that v2 is the highest to retry with (Kafka does the same,
 * KIP-511; DESIGN §4: never disconnect for it). The request body (empty up to v2; v3's
 * client software name and version) is not read.
 *
 * Response layout, after the response header v0 (ApiVersionsResponse.json, apache/kafka
 * clients/src/main/resources/common/message; versions 0-2, non-flexible):
 *
 *   field             type     versions  value
 *  +-----------------+--------+---------+--------------------------------------------+
 *  | error_code      | int16  | 0+      | 0, or 35 for a version outside 0-2          |
 *  | api_keys        | array  | 0+      | int32 count, then per API:                  |
 *  |   api_key       | int16  |         |   the key                                   |
 *  |   min_version   | int16  |         |   advertised minimum (0)                    |
 *  |   max_version   | int16  |         |   accepted maximum                          |
 *  | throttle_time_ms| int32  | 1+      | 0 (absent in the error answer: v0 layout)   |
 *  +-----------------+--------+---------+--------------------------------------------+
 */
#include <errno.h>

#include "net/api.h"
#include "net/kafka.h"

int api_versions_handle(struct api_request *req)
{
	bool supported = kafka_api_version_supported(KAFKA_API_API_VERSIONS, req->api_version);
	size_t count = kafka_api_range_count(), listed = 0;
	for (size_t i = 0; i < count; i++)
		listed += api_implemented(kafka_api_range_at(i)->api_key);
	size_t body = 2 + 4 + listed * 6 + 4;
	struct wire_writer w;
	if (api_response_begin(req, body, &w) < 0) {
		api_fail(req, "out of memory");
		return 0;
	}
	wire_write_i16(&w, supported ? KERR_NONE : KERR_UNSUPPORTED_VERSION);
	wire_write_array_len(&w, (int32_t)listed);
	for (size_t i = 0; i < count; i++) {
		const struct kafka_api_range *range = kafka_api_range_at(i);
		if (!api_implemented(range->api_key))
			continue;
		wire_write_i16(&w, range->api_key);
		wire_write_i16(&w, range->advertised_min_version);
		wire_write_i16(&w, range->max_version);
	}
	if (supported && req->api_version >= 1)
		wire_write_i32(&w, 0); /* throttle_time_ms */
	api_respond(req, &w);
	return 0;
}
