/*
 * pb_error.h — the one error table of pipebridge.
 *
 * Fallible functions return 0 or a negative PB_E* code and may fill a
 * caller-owned pb_error with a message. Each code knows its HTTP status and
 * its AWS `__type`, so no layer above ever maps errors by hand. Backend codes
 * (errno, SQLite, libpq) are translated into these once, at the boundary.
 */
#ifndef PB_ERROR_H
#define PB_ERROR_H

#include <stddef.h>

/* X(name, value, http_status, aws_type, default_message) */
#define PB_ERROR_TABLE(X)                                                              \
    X(PB_OK, 0, 200, "", "success")                                                     \
    X(PB_ENOMEM, -1, 500, "InternalException", "out of memory")                         \
    X(PB_EINTERNAL, -2, 500, "InternalException", "internal error")                     \
    X(PB_EVALIDATION, -3, 400, "ValidationException", "validation error")               \
    X(PB_EPATTERN, -4, 400, "InvalidEventPatternException", "Event pattern is not valid.") \
    X(PB_EEVENT, -5, 400, "ValidationException", "Parameter Event is not valid.")        \
    X(PB_ETOOCOMPLEX, -6, 400, "ValidationException", "event too complex to match")      \
    X(PB_EIO, -7, 500, "InternalException", "I/O error")                                \
    X(PB_EUSAGE, -8, 400, "ValidationException", "usage error")                         \
    X(PB_ENOTFOUND, -9, 400, "ResourceNotFoundException", "not found")                  \
    X(PB_EEXISTS, -10, 400, "ResourceAlreadyExistsException", "already exists")          \
    X(PB_ELIMIT, -11, 400, "LimitExceededException",                                     \
      "The requested resource exceeds the maximum number allowed.")                      \
    X(PB_EMANAGED, -12, 400, "ManagedRuleException", "managed rule")                    \
    X(PB_ECONFLICT, -13, 400, "ConcurrentModificationException", "concurrent modification") \
    X(PB_EUNSUPPORTED, -14, 400, "ValidationException", "not supported")                \
    X(PB_EAUTH_MISSING, -15, 400, "MissingAuthenticationTokenException",               \
      "Missing Authentication Token")                                                    \
    X(PB_EAUTH_INCOMPLETE, -16, 400, "IncompleteSignatureException", "incomplete signature") \
    X(PB_EAUTH_SIGNATURE, -17, 400, "InvalidSignatureException",                        \
      "The request signature we calculated does not match the signature you provided. "  \
      "Check your AWS Secret Access Key and signing method. Consult the service "        \
      "documentation for details.")                                                      \
    X(PB_EAUTH_KEY, -18, 400, "UnrecognizedClientException",                            \
      "The security token included in the request is invalid.")                         \
    X(PB_EUNKNOWN_OP, -19, 400, "UnknownOperationException", "unknown operation")       \
    X(PB_ESERIALIZATION, -20, 400, "SerializationException", "malformed request body")  \
    X(PB_ETOOLARGE, -21, 413, "SerializationException", "request body too large")      \
    X(PB_ESM_NOTFOUND, -22, 400, "ResourceNotFound", "Resource not found.")              \
    X(PB_ESM_CONFLICT, -23, 400, "ConflictException", "conflict")                       \
    X(PB_ESM_LIMIT, -24, 400, "ResourceLimitExceeded", "resource limit exceeded")

enum pb_error_code {
#define PB_X_ENUM(name, value, status, type, msg) name = value,
    PB_ERROR_TABLE(PB_X_ENUM)
#undef PB_X_ENUM
};

#define PB_ERROR_MESSAGE_MAX 2048

/* Filled by fallible functions when the caller passes one; owned by the caller. */
typedef struct pb_error {
    int code;                           /* a PB_E* code, 0 when unset */
    char message[PB_ERROR_MESSAGE_MAX]; /* AWS-style message, NUL-terminated */
} pb_error;

/* Name ("PB_EPATTERN"), HTTP status and AWS __type of a code; unknown codes map
 * to PB_EINTERNAL's entries. Returned strings are static. */
const char *pb_error_name(int code);
int pb_error_http_status(int code);
const char *pb_error_aws_type(int code);
const char *pb_error_default_message(int code);

/* Sets err (when non-NULL) to code with a printf-style message and returns code,
 * so callers can write `return pb_error_set(err, PB_EPATTERN, "...")`. */
int pb_error_set(pb_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to PB_OK with an empty message. */
void pb_error_clear(pb_error *err);

#endif
