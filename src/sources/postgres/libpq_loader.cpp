// libpq, loaded when the first PostgreSQL call is made rather than when preforkd
// starts. Linking libpq directly maps it and its dependencies (OpenSSL, GnuTLS, Kerberos,
// LDAP, ...) into every preforkd process and runs their initialisers: about 5 MiB of
// resident memory in a supervisor that may never talk to PostgreSQL. Each PQ function
// the source uses is defined here and forwards to the real one, found with dlsym on
// first use; the PostgreSQL code itself calls libpq as usual.
#include <libpq-fe.h>

#include <string>

#include "preforkd/job_source.hpp"
#include "util/lazy_library.hpp"

namespace {

template <typename Function>
Function* resolve(const char* name) {
  static preforkd::LazyLibrary libpq("libpq.so.5");
  if (!libpq.handle())
    throw preforkd::SourceError("postgres: cannot load the PostgreSQL client library (" +
                                libpq.load_error() + "); install it: apt-get install libpq5");
  auto* function = libpq.resolve<Function>(name);
  if (!function)
    throw preforkd::SourceError(std::string("postgres: libpq.so.5 has no ") + name +
                                " (a libpq older than this preforkd needs)");
  return function;
}

}  // namespace

// Defines NAME with libpq's signature (checked against libpq-fe.h: a mismatch does not
// compile), forwarding to libpq's own NAME.
#define PREFORKD_FORWARD(R, NAME, PARAMS, ARGS)                  \
  extern "C" R NAME PARAMS {                                     \
    static auto* real = resolve<decltype(NAME)>(#NAME);          \
    return real ARGS;                                            \
  }

PREFORKD_FORWARD(PGconn*, PQconnectdb, (const char* conninfo), (conninfo))
PREFORKD_FORWARD(PGconn*, PQconnectdbParams,
                 (const char* const* keywords, const char* const* values, int expand_dbname),
                 (keywords, values, expand_dbname))
PREFORKD_FORWARD(PGPing, PQping, (const char* conninfo), (conninfo))
PREFORKD_FORWARD(PQconninfoOption*, PQconninfoParse, (const char* conninfo, char** errmsg),
                 (conninfo, errmsg))
PREFORKD_FORWARD(void, PQconninfoFree, (PQconninfoOption * options), (options))
PREFORKD_FORWARD(void, PQfinish, (PGconn * conn), (conn))
PREFORKD_FORWARD(ConnStatusType, PQstatus, (const PGconn* conn), (conn))
PREFORKD_FORWARD(char*, PQerrorMessage, (const PGconn* conn), (conn))
PREFORKD_FORWARD(int, PQsocket, (const PGconn* conn), (conn))
PREFORKD_FORWARD(char*, PQhost, (const PGconn* conn), (conn))
PREFORKD_FORWARD(char*, PQport, (const PGconn* conn), (conn))
PREFORKD_FORWARD(char*, PQdb, (const PGconn* conn), (conn))
PREFORKD_FORWARD(PQnoticeProcessor, PQsetNoticeProcessor,
                 (PGconn * conn, PQnoticeProcessor proc, void* arg), (conn, proc, arg))
PREFORKD_FORWARD(PGresult*, PQexec, (PGconn * conn, const char* query), (conn, query))
PREFORKD_FORWARD(PGresult*, PQexecParams,
                 (PGconn * conn, const char* command, int nParams, const Oid* paramTypes,
                  const char* const* paramValues, const int* paramLengths,
                  const int* paramFormats, int resultFormat),
                 (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
                  resultFormat))
PREFORKD_FORWARD(PGresult*, PQprepare,
                 (PGconn * conn, const char* stmtName, const char* query, int nParams,
                  const Oid* paramTypes),
                 (conn, stmtName, query, nParams, paramTypes))
PREFORKD_FORWARD(PGresult*, PQexecPrepared,
                 (PGconn * conn, const char* stmtName, int nParams, const char* const* paramValues,
                  const int* paramLengths, const int* paramFormats, int resultFormat),
                 (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat))
PREFORKD_FORWARD(int, PQsendPrepare,
                 (PGconn * conn, const char* stmtName, const char* query, int nParams,
                  const Oid* paramTypes),
                 (conn, stmtName, query, nParams, paramTypes))
PREFORKD_FORWARD(int, PQsendQueryPrepared,
                 (PGconn * conn, const char* stmtName, int nParams, const char* const* paramValues,
                  const int* paramLengths, const int* paramFormats, int resultFormat),
                 (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat))
PREFORKD_FORWARD(int, PQisBusy, (PGconn * conn), (conn))
PREFORKD_FORWARD(PGresult*, PQgetResult, (PGconn * conn), (conn))
PREFORKD_FORWARD(int, PQconsumeInput, (PGconn * conn), (conn))
PREFORKD_FORWARD(PGnotify*, PQnotifies, (PGconn * conn), (conn))
PREFORKD_FORWARD(void, PQfreemem, (void* ptr), (ptr))
PREFORKD_FORWARD(ExecStatusType, PQresultStatus, (const PGresult* res), (res))
PREFORKD_FORWARD(char*, PQresultErrorMessage, (const PGresult* res), (res))
PREFORKD_FORWARD(int, PQntuples, (const PGresult* res), (res))
PREFORKD_FORWARD(int, PQnfields, (const PGresult* res), (res))
PREFORKD_FORWARD(char*, PQgetvalue, (const PGresult* res, int tup_num, int field_num),
                 (res, tup_num, field_num))
PREFORKD_FORWARD(int, PQgetisnull, (const PGresult* res, int tup_num, int field_num),
                 (res, tup_num, field_num))
PREFORKD_FORWARD(char*, PQcmdTuples, (PGresult * res), (res))
PREFORKD_FORWARD(void, PQclear, (PGresult * res), (res))
