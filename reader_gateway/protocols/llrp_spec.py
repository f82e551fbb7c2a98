"""Numbers from the LLRP specification (EPCglobal LLRP 1.0.1 and 1.1) that the codec uses.

Every LLRP message starts with a 10-byte header, big-endian::

    Rsvd(3 bits) | Ver(3 bits) | Message Type(10 bits) | Message Length(32) | Message ID(32)

``Message Length`` counts the whole message, header included. Parameters come in two shapes:
TV (one byte, top bit set, 7-bit type, then a value whose length only the type tells) and TLV
(6 reserved bits + 10-bit type, 16-bit length counting the 4-byte header, then the value).
Because a TV parameter carries no length, an unknown TV type cannot be skipped: the decoder
refuses the message instead of guessing.
"""

from __future__ import annotations

HEADER_LEN = 10
TLV_HEADER_LEN = 4
# Version field: 1 = LLRP 1.0.1, 2 = LLRP 1.1. Readers speak 1 until SET_PROTOCOL_VERSION.
SUPPORTED_VERSIONS = frozenset({1, 2})
DEFAULT_PORT = 5084

# ---- message types ---------------------------------------------------------------------------
GET_READER_CAPABILITIES = 1
GET_READER_CONFIG = 2
SET_READER_CONFIG = 3
CLOSE_CONNECTION_RESPONSE = 4
GET_READER_CAPABILITIES_RESPONSE = 11
GET_READER_CONFIG_RESPONSE = 12
SET_READER_CONFIG_RESPONSE = 13
CLOSE_CONNECTION = 14
ADD_ROSPEC = 20
DELETE_ROSPEC = 21
START_ROSPEC = 22
STOP_ROSPEC = 23
ENABLE_ROSPEC = 24
DISABLE_ROSPEC = 25
GET_ROSPECS = 26
ADD_ROSPEC_RESPONSE = 30
DELETE_ROSPEC_RESPONSE = 31
START_ROSPEC_RESPONSE = 32
STOP_ROSPEC_RESPONSE = 33
ENABLE_ROSPEC_RESPONSE = 34
DISABLE_ROSPEC_RESPONSE = 35
GET_ROSPECS_RESPONSE = 36
ADD_ACCESSSPEC = 40
DELETE_ACCESSSPEC = 41
ENABLE_ACCESSSPEC = 42
DISABLE_ACCESSSPEC = 43
GET_ACCESSSPECS = 44
CLIENT_REQUEST_OP = 45
GET_SUPPORTED_VERSION = 46
SET_PROTOCOL_VERSION = 47
ADD_ACCESSSPEC_RESPONSE = 50
DELETE_ACCESSSPEC_RESPONSE = 51
ENABLE_ACCESSSPEC_RESPONSE = 52
DISABLE_ACCESSSPEC_RESPONSE = 53
GET_ACCESSSPECS_RESPONSE = 54
CLIENT_REQUEST_OP_RESPONSE = 55
GET_SUPPORTED_VERSION_RESPONSE = 56
SET_PROTOCOL_VERSION_RESPONSE = 57
GET_REPORT = 60
RO_ACCESS_REPORT = 61
KEEPALIVE = 62
READER_EVENT_NOTIFICATION = 63
ENABLE_EVENTS_AND_REPORTS = 64
KEEPALIVE_ACK = 72
ERROR_MESSAGE = 100
CUSTOM_MESSAGE = 1023

# Messages a reader answers with; each carries an LLRPStatus (ERROR_MESSAGE too).
RESPONSES: dict[int, str] = {
    CLOSE_CONNECTION_RESPONSE: "CLOSE_CONNECTION_RESPONSE",
    GET_READER_CAPABILITIES_RESPONSE: "GET_READER_CAPABILITIES_RESPONSE",
    GET_READER_CONFIG_RESPONSE: "GET_READER_CONFIG_RESPONSE",
    SET_READER_CONFIG_RESPONSE: "SET_READER_CONFIG_RESPONSE",
    ADD_ROSPEC_RESPONSE: "ADD_ROSPEC_RESPONSE",
    DELETE_ROSPEC_RESPONSE: "DELETE_ROSPEC_RESPONSE",
    START_ROSPEC_RESPONSE: "START_ROSPEC_RESPONSE",
    STOP_ROSPEC_RESPONSE: "STOP_ROSPEC_RESPONSE",
    ENABLE_ROSPEC_RESPONSE: "ENABLE_ROSPEC_RESPONSE",
    DISABLE_ROSPEC_RESPONSE: "DISABLE_ROSPEC_RESPONSE",
    GET_ROSPECS_RESPONSE: "GET_ROSPECS_RESPONSE",
    ADD_ACCESSSPEC_RESPONSE: "ADD_ACCESSSPEC_RESPONSE",
    DELETE_ACCESSSPEC_RESPONSE: "DELETE_ACCESSSPEC_RESPONSE",
    ENABLE_ACCESSSPEC_RESPONSE: "ENABLE_ACCESSSPEC_RESPONSE",
    DISABLE_ACCESSSPEC_RESPONSE: "DISABLE_ACCESSSPEC_RESPONSE",
    GET_ACCESSSPECS_RESPONSE: "GET_ACCESSSPECS_RESPONSE",
    CLIENT_REQUEST_OP_RESPONSE: "CLIENT_REQUEST_OP_RESPONSE",
    GET_SUPPORTED_VERSION_RESPONSE: "GET_SUPPORTED_VERSION_RESPONSE",
    SET_PROTOCOL_VERSION_RESPONSE: "SET_PROTOCOL_VERSION_RESPONSE",
    ERROR_MESSAGE: "ERROR_MESSAGE",
}

# Messages only a client sends; a reader sending one is a protocol error worth a reject.
CLIENT_MESSAGES = frozenset(
    {
        GET_READER_CAPABILITIES,
        GET_READER_CONFIG,
        SET_READER_CONFIG,
        CLOSE_CONNECTION,
        ADD_ROSPEC,
        DELETE_ROSPEC,
        START_ROSPEC,
        STOP_ROSPEC,
        ENABLE_ROSPEC,
        DISABLE_ROSPEC,
        GET_ROSPECS,
        ADD_ACCESSSPEC,
        DELETE_ACCESSSPEC,
        ENABLE_ACCESSSPEC,
        DISABLE_ACCESSSPEC,
        GET_ACCESSSPECS,
        GET_SUPPORTED_VERSION,
        SET_PROTOCOL_VERSION,
        GET_REPORT,
        ENABLE_EVENTS_AND_REPORTS,
        KEEPALIVE_ACK,
    }
)

# ---- TV parameters: type -> value length in bytes -------------------------------------------
TV_ANTENNA_ID = 1
TV_FIRST_SEEN_UTC = 2
TV_FIRST_SEEN_UPTIME = 3
TV_LAST_SEEN_UTC = 4
TV_LAST_SEEN_UPTIME = 5
TV_PEAK_RSSI = 6
TV_CHANNEL_INDEX = 7
TV_TAG_SEEN_COUNT = 8
TV_ROSPEC_ID = 9
TV_INVENTORY_PARAMETER_SPEC_ID = 10
TV_C1G2_CRC = 11
TV_C1G2_PC = 12
TV_EPC_96 = 13
TV_SPEC_INDEX = 14
TV_CLIENT_REQUEST_OPSPEC_RESULT = 15
TV_ACCESS_SPEC_ID = 16
TV_OPSPEC_ID = 17
TV_C1G2_SINGULATION_DETAILS = 18
TV_C1G2_XPC_W1 = 19
TV_C1G2_XPC_W2 = 20

TV_LENGTHS: dict[int, int] = {
    TV_ANTENNA_ID: 2,
    TV_FIRST_SEEN_UTC: 8,
    TV_FIRST_SEEN_UPTIME: 8,
    TV_LAST_SEEN_UTC: 8,
    TV_LAST_SEEN_UPTIME: 8,
    TV_PEAK_RSSI: 1,
    TV_CHANNEL_INDEX: 2,
    TV_TAG_SEEN_COUNT: 2,
    TV_ROSPEC_ID: 4,
    TV_INVENTORY_PARAMETER_SPEC_ID: 2,
    TV_C1G2_CRC: 2,
    TV_C1G2_PC: 2,
    TV_EPC_96: 12,
    TV_SPEC_INDEX: 2,
    TV_CLIENT_REQUEST_OPSPEC_RESULT: 2,
    TV_ACCESS_SPEC_ID: 4,
    TV_OPSPEC_ID: 2,
    TV_C1G2_SINGULATION_DETAILS: 4,
    TV_C1G2_XPC_W1: 2,
    TV_C1G2_XPC_W2: 2,
}

# ---- TLV parameters --------------------------------------------------------------------------
P_UTC_TIMESTAMP = 128
P_ROSPEC = 177
P_RO_BOUNDARY_SPEC = 178
P_ROSPEC_START_TRIGGER = 179
P_ROSPEC_STOP_TRIGGER = 182
P_AISPEC = 183
P_AISPEC_STOP_TRIGGER = 184
P_INVENTORY_PARAMETER_SPEC = 186
P_RO_REPORT_SPEC = 237
P_TAG_REPORT_CONTENT_SELECTOR = 238
P_TAG_REPORT_DATA = 240
P_EPC_DATA = 241
P_READER_EVENT_NOTIFICATION_DATA = 246
P_ANTENNA_EVENT = 255
P_CONNECTION_ATTEMPT_EVENT = 256
P_CONNECTION_CLOSE_EVENT = 257
P_LLRP_STATUS = 287
P_CUSTOM = 1023
# Reader configuration and capabilities (what the transport sends and checks).
P_GENERAL_DEVICE_CAPABILITIES = 137
P_RECEIVE_SENSITIVITY_TABLE_ENTRY = 139
P_GPIO_CAPABILITIES = 141
P_PER_ANTENNA_AIR_PROTOCOL = 140
P_REGULATORY_CAPABILITIES = 143
P_UHF_BAND_CAPABILITIES = 144
P_TRANSMIT_POWER_LEVEL_TABLE_ENTRY = 145
P_FREQUENCY_INFORMATION = 146
P_FIXED_FREQUENCY_TABLE = 148
P_C1G2_UHF_RF_MODE_TABLE = 328
P_C1G2_UHF_RF_MODE_TABLE_ENTRY = 329
P_KEEPALIVE_SPEC = 220
P_ANTENNA_CONFIGURATION = 222
P_RF_TRANSMITTER = 224
P_C1G2_INVENTORY_COMMAND = 330
P_C1G2_SINGULATION_CONTROL = 336
# Impinj (IANA private enterprise number 25882) vendor extensions the gateway may send.
IMPINJ_VENDOR_ID = 25882
IMPINJ_ENABLE_EXTENSIONS = 21  # CUSTOM_MESSAGE subtype
IMPINJ_ENABLE_EXTENSIONS_RESPONSE = 22
IMPINJ_INVENTORY_SEARCH_MODE = 23  # Custom parameter subtype

# Sub-events of ReaderEventNotificationData, by parameter type (names as in the spec).
READER_EVENTS: dict[int, str] = {
    247: "HoppingEvent",
    248: "GPIEvent",
    249: "ROSpecEvent",
    250: "ReportBufferLevelWarningEvent",
    251: "ReportBufferOverflowErrorEvent",
    252: "ReaderExceptionEvent",
    253: "RFSurveyEvent",
    254: "AISpecEvent",
    P_ANTENNA_EVENT: "AntennaEvent",
    P_CONNECTION_ATTEMPT_EVENT: "ConnectionAttemptEvent",
    P_CONNECTION_CLOSE_EVENT: "ConnectionCloseEvent",
    356: "SpecLoopEvent",
}

CONNECTION_ATTEMPT_STATUS: dict[int, str] = {
    0: "Success",
    1: "Failed_A_Reader_Initiated_Connection_Already_Exists",
    2: "Failed_A_Client_Initiated_Connection_Already_Exists",
    3: "Failed_Reason_Other_Than_A_Connection_Already_Exists",
    4: "Another_Connection_Attempted",
}

# LLRPStatus codes (M_ message, P_ parameter, A_ air protocol, R_ reader).
STATUS_CODES: dict[int, str] = {
    0: "M_Success",
    100: "M_ParameterError",
    101: "M_FieldError",
    102: "M_UnexpectedParameter",
    103: "M_MissingParameter",
    104: "M_DuplicateParameter",
    105: "M_OverflowParameter",
    106: "M_OverflowField",
    107: "M_UnknownParameter",
    108: "M_UnknownField",
    109: "M_UnsupportedMessage",
    110: "M_UnsupportedVersion",
    111: "M_UnsupportedParameter",
    112: "M_UnexpectedMessage",
    200: "P_ParameterError",
    201: "P_FieldError",
    202: "P_UnexpectedParameter",
    203: "P_MissingParameter",
    204: "P_DuplicateParameter",
    205: "P_OverflowParameter",
    206: "P_OverflowField",
    207: "P_UnknownParameter",
    208: "P_UnknownField",
    209: "P_UnsupportedParameter",
    300: "A_Invalid",
    301: "A_OutOfRange",
    401: "R_DeviceError",
}

# TagReportContentSelector flag bits (of its 16-bit field, most significant first).
SELECT_ROSPEC_ID = 1 << 15
SELECT_SPEC_INDEX = 1 << 14
SELECT_INVENTORY_PARAMETER_SPEC_ID = 1 << 13
SELECT_ANTENNA_ID = 1 << 12
SELECT_CHANNEL_INDEX = 1 << 11
SELECT_PEAK_RSSI = 1 << 10
SELECT_FIRST_SEEN = 1 << 9
SELECT_LAST_SEEN = 1 << 8
SELECT_TAG_SEEN_COUNT = 1 << 7
SELECT_ACCESS_SPEC_ID = 1 << 6
