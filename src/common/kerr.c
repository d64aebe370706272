#include "common/kerr.h"

const char *kerr_name(int code)
{
    switch (code) {
    case KERR_NONE:
        return "NONE";
    case KERR_OFFSET_OUT_OF_RANGE:
        return "OFFSET_OUT_OF_RANGE";
    case KERR_CORRUPT_MESSAGE:
        return "CORRUPT_MESSAGE";
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
        return "UNKNOWN_TOPIC_OR_PARTITION";
    case KERR_NOT_LEADER_OR_FOLLOWER:
        return "NOT_LEADER_OR_FOLLOWER";
    case KERR_MESSAGE_TOO_LARGE:
        return "MESSAGE_TOO_LARGE";
    case KERR_INVALID_TOPIC_EXCEPTION:
        return "INVALID_TOPIC_EXCEPTION";
    case KERR_INVALID_REQUIRED_ACKS:
        return "INVALID_REQUIRED_ACKS";
    case KERR_UNSUPPORTED_VERSION:
        return "UNSUPPORTED_VERSION";
    case KERR_TOPIC_ALREADY_EXISTS:
        return "TOPIC_ALREADY_EXISTS";
    case KERR_INVALID_PARTITIONS:
        return "INVALID_PARTITIONS";
    case KERR_INVALID_REPLICATION_FACTOR:
        return "INVALID_REPLICATION_FACTOR";
    case KERR_INVALID_CONFIG:
        return "INVALID_CONFIG";
    case KERR_INVALID_REQUEST:
        return "INVALID_REQUEST";
    case KERR_KAFKA_STORAGE_ERROR:
        return "KAFKA_STORAGE_ERROR";
    case KERR_FENCED_LEADER_EPOCH:
        return "FENCED_LEADER_EPOCH";
    case KERR_UNKNOWN_LEADER_EPOCH:
        return "UNKNOWN_LEADER_EPOCH";
    case KERR_INVALID_RECORD:
        return "INVALID_RECORD";
    case KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        return "UNSUPPORTED_FOR_MESSAGE_FORMAT";
    default:
        return "UNKNOWN";
    }
}
