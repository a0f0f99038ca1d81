/*
 * relay.c
 *		notify_mode = relay: writers send no NOTIFY; a background worker per
 *		database listed in order_mgmt.relay_databases announces committed
 *		events on channel order_mgmt_events, in batches, from its own
 *		transactions.
 *
 * Why: a transaction that sends NOTIFY takes a cluster-wide lock and holds
 * it through its commit (the WAL flush), so notifying writers commit one at
 * a time; and a transaction prepared for two-phase commit cannot NOTIFY.
 * With the relay, the worker is the only notifier.
 *
 * What it reads: the worker is the consumer 'order_mgmt.relay' and reads
 * with fetch_events / ack_events (stream.sql), so it announces events in the
 * order consumers can fetch them, never skips one that commits late, and
 * after a restart resumes where it stopped (an event may be announced twice,
 * never lost).  It registers "from now": enabling the relay on a database
 * with history does not announce the history.
 *
 * How it wakes: a writer that wrote events in relay mode sets the worker's
 * latch from its commit callback (shared memory holds the latch of the
 * worker of each database), and COMMIT PREPARED does the same.  It also
 * polls: while events it has not announced are in the log (held back by an
 * older running transaction, which may write no event and so wake nobody
 * when it ends) every RELAY_PENDING_MS, doubling up to RELAY_PENDING_MAX_MS
 * while nothing can be announced; else every order_mgmt.relay_naptime.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "order_mgmt.h"

#define RELAY_MAX_DATABASES 16
#define RELAY_CONSUMER "order_mgmt.relay"
#define RELAY_PENDING_MS 10		/* poll while unannounced events wait, */
#define RELAY_PENDING_MAX_MS 160	/* backing off while nothing moves */
#define RELAY_RESTART_SECS 10	/* after an error ends the worker */

/* The worker of one served database, for writers to wake. */
typedef struct RelaySlot
{
	Oid			dboid;			/* InvalidOid: no worker attached */
	Latch	   *latch;
} RelaySlot;

typedef struct RelayShared
{
	slock_t		mutex;
	RelaySlot	slots[RELAY_MAX_DATABASES];
} RelayShared;

/* What one round of the worker found. */
typedef enum RelayOutcome
{
	RELAY_FULL,					/* a full batch: go on at once */
	RELAY_PENDING,				/* events wait behind a running transaction */
	RELAY_IDLE,					/* everything announced */
	RELAY_NOT_INSTALLED			/* no order_mgmt >= 0.7.0 in the database */
} RelayOutcome;

static bool relay_preloaded = false;
static char *relay_databases = NULL;
static int	relay_batch_size = 1000;
static int	relay_naptime = 1000;	/* ms */
static int	relay_interval = 5;		/* ms */
static RelayShared *relay_shared = NULL;
static bool xact_wrote_events = false;
static int	database_served = -1;	/* this backend: -1 not checked yet */

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static ProcessUtility_hook_type prev_process_utility = NULL;

PGDLLEXPORT void order_mgmt_relay_main(Datum main_arg);

/*
 * The names in a relay_databases value, or false for a syntax error.  The
 * names point into a palloc'd copy of the value.
 */
static bool
RelayDatabaseNames(const char *value, List **names)
{
	*names = NIL;
	return SplitGUCList(pstrdup(value), ',', names);
}

static bool
DatabaseIsServed(const char *dbname)
{
	List	   *names;
	ListCell   *lc;

	if (relay_databases == NULL || !RelayDatabaseNames(relay_databases, &names))
		return false;
	foreach(lc, names)
	{
		if (strcmp((const char *) lfirst(lc), dbname) == 0)
			return true;
	}
	return false;
}

/* GUC check: at most RELAY_MAX_DATABASES distinct, valid database names. */
static bool
CheckRelayDatabases(char **newval, void **extra, GucSource source)
{
	List	   *names;
	ListCell   *lc;

	if (!RelayDatabaseNames(*newval, &names))
	{
		GUC_check_errdetail("List syntax is invalid.");
		return false;
	}
	if (list_length(names) > RELAY_MAX_DATABASES)
	{
		GUC_check_errdetail("At most %d databases can be relayed.", RELAY_MAX_DATABASES);
		return false;
	}
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		ListCell   *prev;

		if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		{
			GUC_check_errdetail("\"%s\" is not a valid database name.", name);
			return false;
		}
		foreach(prev, names)
		{
			if (prev == lc)
				break;
			if (strcmp((const char *) lfirst(prev), name) == 0)
			{
				GUC_check_errdetail("Database \"%s\" is listed twice.", name);
				return false;
			}
		}
	}
	return true;
}

/*
 * GUC check of order_mgmt.notify_mode: relay needs the worker, so the
 * library must have been preloaded, and a session's own setting must be in
 * a database a worker serves.  (Settings from the configuration file and
 * ALTER ... SET tests are not tied to one database; a backend in relay mode
 * whose database has no worker warns at its first event.)
 */
bool
OmCheckNotifyMode(int *newval, void **extra, GucSource source)
{
	if (*newval != OM_NOTIFY_RELAY)
		return true;
	if (!relay_preloaded)
	{
		GUC_check_errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE);
		GUC_check_errmsg("order_mgmt.notify_mode \"relay\" needs order_mgmt in shared_preload_libraries");
		GUC_check_errdetail("The relay is a background worker, which only a preloaded library can start.");
		GUC_check_errhint("Add order_mgmt to shared_preload_libraries and this database to order_mgmt.relay_databases, then restart the server. Until then use notify_mode \"commit\".");
		return false;
	}
	if (source >= PGC_S_DATABASE && source != PGC_S_TEST &&
		MyProcPort != NULL && MyProcPort->database_name != NULL &&
		!DatabaseIsServed(MyProcPort->database_name))
	{
		GUC_check_errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE);
		GUC_check_errmsg("no order_mgmt relay worker serves database \"%s\"",
						 MyProcPort->database_name);
		GUC_check_errhint("Add the database to order_mgmt.relay_databases and restart the server.");
		return false;
	}
	return true;
}

/* Wake the relay worker of a database, if it runs. */
static void
RelayWake(Oid dboid)
{
	Latch	   *latch = NULL;

	if (relay_shared == NULL)
		return;
	SpinLockAcquire(&relay_shared->mutex);
	for (int i = 0; i < RELAY_MAX_DATABASES; i++)
	{
		if (relay_shared->slots[i].dboid == dboid)
		{
			latch = relay_shared->slots[i].latch;
			break;
		}
	}
	SpinLockRelease(&relay_shared->mutex);
	/* outside the spinlock; a latch of a worker that just left is harmless */
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * EmitEvent in relay mode: remember to wake the worker when this
 * transaction commits.  Warns once per backend when no worker serves the
 * database (relay mode set in the configuration file for every database).
 */
void
OmRelayEventWritten(void)
{
	xact_wrote_events = true;
	if (database_served < 0)
	{
		char	   *dbname = get_database_name(MyDatabaseId);

		database_served = dbname != NULL && DatabaseIsServed(dbname);
		if (!database_served)
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no order_mgmt relay worker serves database \"%s\"",
							dbname ? dbname : "?"),
					 errdetail("Events are written but nobody announces them on channel %s.",
							   OM_CHANNEL),
					 errhint("Add the database to order_mgmt.relay_databases and restart the server, or use notify_mode \"commit\".")));
	}
}

/*
 * On Citus (citus.c): wake this node's relay worker, if one runs here, when
 * the transaction commits.  Writers there never NOTIFY whatever their
 * notify_mode, and the workers run no relay (the coordinator's relays the
 * whole cluster), so no warning about a missing worker.
 */
void
OmRelayWakeAtCommit(void)
{
	xact_wrote_events = true;
}

/* After commit (when the events are visible), wake the worker. */
static void
RelayXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (xact_wrote_events)
				RelayWake(MyDatabaseId);
			xact_wrote_events = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:	/* woken by COMMIT PREPARED instead */
			xact_wrote_events = false;
			break;
		default:
			break;
	}
}

/*
 * COMMIT PREPARED commits a transaction that may have written events, in a
 * session that does not know it: wake the worker once it is done.
 */
static void
RelayProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		commit_prepared = IsA(stmt, TransactionStmt) &&
		((TransactionStmt *) stmt)->kind == TRANS_STMT_COMMIT_PREPARED;

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (commit_prepared)
		RelayWake(MyDatabaseId);
}

static void
RelayShmemRequest(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(sizeof(RelayShared));
}

static void
RelayShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	relay_shared = ShmemInitStruct("order_mgmt relay", sizeof(RelayShared), &found);
	if (!found)
	{
		memset(relay_shared, 0, sizeof(RelayShared));
		SpinLockInit(&relay_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* One static worker per listed database (the list is fixed at start). */
static void
RegisterRelayWorkers(void)
{
	List	   *names;
	ListCell   *lc;
	int			slot = 0;

	if (!RelayDatabaseNames(relay_databases, &names))
		return;					/* cannot happen: the check hook passed */
	foreach(lc, names)
	{
		const char *dbname = lfirst(lc);
		BackgroundWorker w;

		memset(&w, 0, sizeof(w));
		snprintf(w.bgw_name, BGW_MAXLEN, "order_mgmt relay for database %s", dbname);
		snprintf(w.bgw_type, BGW_MAXLEN, "order_mgmt relay");
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		/* never on a standby: it starts when recovery ends (promotion) */
		w.bgw_start_time = BgWorkerStart_RecoveryFinished;
		w.bgw_restart_time = RELAY_RESTART_SECS;
		snprintf(w.bgw_library_name, BGW_MAXLEN, "order_mgmt");
		snprintf(w.bgw_function_name, BGW_MAXLEN, "order_mgmt_relay_main");
		w.bgw_main_arg = Int32GetDatum(slot++);
		strlcpy(w.bgw_extra, dbname, BGW_EXTRALEN);
		RegisterBackgroundWorker(&w);
	}
}

/*
 * From _PG_init, before notify_mode is defined (its check reads what is set
 * here).  Every backend gets the commit callback; the rest only when the
 * library is preloaded.
 */
void
OmRelayInit(void)
{
	RegisterXactCallback(RelayXactCallback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	relay_preloaded = true;
	DefineCustomStringVariable("order_mgmt.relay_databases",
							   "Databases whose events a relay worker announces (notify_mode = relay).",
							   "A comma-separated list of at most 16 database names; one background worker each.",
							   &relay_databases, "",
							   PGC_POSTMASTER, 0, CheckRelayDatabases, NULL, NULL);
	DefineCustomIntVariable("order_mgmt.relay_batch_size",
							"Most events the relay worker announces in one transaction.",
							NULL, &relay_batch_size, 1000, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("order_mgmt.relay_interval",
							"Shortest time from one round of the relay worker to the next.",
							"Under load the commits of this interval are announced together.",
							&relay_interval, 5, 0, 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("order_mgmt.relay_naptime",
							"How often the relay worker looks for events when nobody woke it.",
							NULL, &relay_naptime, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RelayShmemRequest;
#else
	RelayShmemRequest();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = RelayShmemStartup;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = RelayProcessUtility;
	RegisterRelayWorkers();
}

/* ------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------
 */

static void
RelayDetach(int code, Datum arg)
{
	RelaySlot  *slot = &relay_shared->slots[DatumGetInt32(arg)];

	SpinLockAcquire(&relay_shared->mutex);
	slot->dboid = InvalidOid;
	slot->latch = NULL;
	SpinLockRelease(&relay_shared->mutex);
}

/* Publish this worker's latch for the writers of its database. */
static void
RelayAttach(int slotno)
{
	RelaySlot  *slot = &relay_shared->slots[slotno];

	SpinLockAcquire(&relay_shared->mutex);
	slot->dboid = MyDatabaseId;
	slot->latch = MyLatch;
	SpinLockRelease(&relay_shared->mutex);
	before_shmem_exit(RelayDetach, Int32GetDatum(slotno));
}

/*
 * The worker's statements, prepared on first use and kept for its life: a
 * round runs five of them, and at one writer a round is one event, so
 * parsing and planning them each time would cost more than the writer's
 * own transaction.  (A kept plan is re-planned by name after DDL, e.g. when
 * the extension is dropped and created again.)
 */
typedef struct RelayStmt
{
	const char *sql;
	int			nargs;
	Oid			types[3];
	SPIPlanPtr	plan;
} RelayStmt;

static RelayStmt stmt_ready = {
	"SELECT pg_catalog.to_regprocedure('" OM_SCHEMA ".fetch_events(text,integer)') IS NOT NULL", 0};
/* first run: start after the events already in the log */
static RelayStmt stmt_register = {
	"SELECT " OM_SCHEMA ".register_consumer($1, true)", 1, {TEXTOID}};
static RelayStmt stmt_fetch = {
	"SELECT tx, seq, event_id::text, order_id, event_type, from_status, to_status"
	" FROM " OM_SCHEMA ".fetch_events($1, $2)", 2, {TEXTOID, INT4OID}};
static RelayStmt stmt_ack = {
	"SELECT " OM_SCHEMA ".ack_events($1, $2, $3)", 3, {TEXTOID, XID8OID, INT8OID}};
/* on Citus: any node group with events after the relay's cursor? */
static RelayStmt stmt_pending_citus = {
	"SELECT " OM_SCHEMA ".citus_events_pending($1)", 1, {TEXTOID}};
/* anything after the cursor, held back?  (one index probe, not a scan) */
static RelayStmt stmt_pending = {
	"SELECT EXISTS (SELECT FROM " OM_SCHEMA ".consumers c CROSS JOIN LATERAL"
	" (SELECT FROM " OM_SCHEMA ".events e"
	"  WHERE (e.tx, e.seq) OPERATOR(pg_catalog.>) (c.acked_tx, c.acked_seq)"
	"  ORDER BY e.tx, e.seq LIMIT 1) AS next WHERE c.consumer OPERATOR(pg_catalog.=) $1)",
	1, {TEXTOID}};

/* Run a statement through SPI; elog on anything but a SELECT result. */
static void
RelayExec(RelayStmt *stmt, Datum *values)
{
	int			rc;

	rc = SPI_execute_plan(OmKeepPlan(&stmt->plan, stmt->sql, stmt->nargs, stmt->types),
						  values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "order_mgmt relay: \"%s\" failed: %s", stmt->sql, SPI_result_code_string(rc));
}

/* The boolean first column of the single row the last statement returned. */
static bool
RelayBoolResult(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed != 1)
		elog(ERROR, "order_mgmt relay: expected one row, got " UINT64_FORMAT, SPI_processed);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

/* Is order_mgmt 0.7.0 or later (with the consumer API) installed here? */
static bool
RelayReady(void)
{
	RelayExec(&stmt_ready, NULL);
	return RelayBoolResult();
}

/* Queue one NOTIFY per fetched row, with the payload commit mode sends. */
static void
QueueNotifies(SPITupleTable *tt, uint64 n, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	StringInfoData buf;

	initStringInfo(&buf);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = tt->vals[i];
		bool		isnull;
		int64		seq = DatumGetInt64(SPI_getbinval(row, tt->tupdesc, 2, &isnull));
		int64		order_id = DatumGetInt64(SPI_getbinval(row, tt->tupdesc, 4, &isnull));

		resetStringInfo(&buf);
		OmAppendNotifyPayload(&buf, SPI_getvalue(row, tt->tupdesc, 3), seq, order_id,
							  SPI_getvalue(row, tt->tupdesc, 5),
							  SPI_getvalue(row, tt->tupdesc, 6),
							  SPI_getvalue(row, tt->tupdesc, 7));
		Async_Notify(OM_CHANNEL, buf.data);	/* copies the payload */
	}
	MemoryContextSwitchTo(old);
}

/*
 * One batch, inside the caller's transaction: fetch up to relay_batch_size
 * events after the relay's cursor, queue their NOTIFYs (sent when the
 * transaction commits) and acknowledge the last one.
 */
static RelayOutcome
RelayAnnounce(MemoryContext cxt, uint64 *announced)
{
	Datum		args[3];
	bool		isnull;
	uint64		n;

	args[0] = CStringGetTextDatum(RELAY_CONSUMER);
	args[1] = Int32GetDatum(relay_batch_size);
	RelayExec(&stmt_register, args);
	RelayExec(&stmt_fetch, args);
	n = SPI_processed;
	*announced = n;
	if (n > 0)
	{
		HeapTuple	last = SPI_tuptable->vals[n - 1];

		QueueNotifies(SPI_tuptable, n, cxt);
		args[1] = SPI_getbinval(last, SPI_tuptable->tupdesc, 1, &isnull);	/* by value */
		args[2] = SPI_getbinval(last, SPI_tuptable->tupdesc, 2, &isnull);
		RelayExec(&stmt_ack, args);
	}
	if (n == (uint64) relay_batch_size)
		return RELAY_FULL;
	if (OmCitusActive())
	{
		/* a batch holds one node group's events: another may be waiting */
		if (n > 0)
			return RELAY_FULL;
		RelayExec(&stmt_pending_citus, args);
	}
	else
		RelayExec(&stmt_pending, args);
	return RelayBoolResult() ? RELAY_PENDING : RELAY_IDLE;
}

/* One round in its own transaction; its NOTIFYs go out at its commit. */
static RelayOutcome
RelayRound(MemoryContext cxt, uint64 *announced)
{
	RelayOutcome outcome;

	*announced = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "order_mgmt relay: announcing events");
	outcome = RelayReady() ? RelayAnnounce(cxt, announced) : RELAY_NOT_INSTALLED;
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return outcome;
}

/* Log when the extension goes missing or comes back, not every round. */
static void
ReportReadiness(RelayOutcome outcome, const char *dbname, bool *missing)
{
	bool		now_missing = outcome == RELAY_NOT_INSTALLED;

	if (now_missing == *missing)
		return;
	*missing = now_missing;
	if (now_missing)
		ereport(LOG,
				(errmsg("order_mgmt relay: extension order_mgmt 0.7.0 or later is not installed in database \"%s\"",
						dbname),
				 errdetail("The relay looks again every order_mgmt.relay_naptime and whenever an event is written.")));
	else
		ereport(LOG,
				(errmsg("order_mgmt relay: relaying the events of database \"%s\"", dbname)));
}

/*
 * Under load every commit wakes the worker, and a round per commit would
 * cost more CPU than announcing its events: a round starts at most once per
 * relay_interval, so the commits of the pause go out together.  On a quiet
 * server the interval has long passed when a commit wakes the worker.
 */
static void
PaceRounds(TimestampTz last_start)
{
	TimestampTz next = TimestampTzPlusMilliseconds(last_start, relay_interval);
	TimestampTz now = GetCurrentTimestamp();

	if (relay_interval > 0 && now < next)
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TimestampDifferenceMilliseconds(now, next), PG_WAIT_EXTENSION);
}

/*
 * Main loop of a relay worker.  SIGTERM ends it (die: at the next interrupt
 * check, also inside a query); SIGHUP rereads the configuration between
 * rounds.  An ERROR ends it too, and the postmaster starts it again after
 * RELAY_RESTART_SECS; its cursor is durable.
 */
void
order_mgmt_relay_main(Datum main_arg)
{
	int			slotno = DatumGetInt32(main_arg);
	char		dbname[NAMEDATALEN];
	MemoryContext round_cxt;
	bool		missing = false;
	long		pending_wait = RELAY_PENDING_MS;
	TimestampTz last_start = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (slotno < 0 || slotno >= RELAY_MAX_DATABASES || relay_shared == NULL)
		elog(FATAL, "order_mgmt relay: invalid worker slot %d", slotno);
	strlcpy(dbname, MyBgworkerEntry->bgw_extra, sizeof(dbname));

	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	RelayAttach(slotno);
	/*
	 * Its acknowledgements need not wait for the WAL flush: a cursor lost in
	 * a crash only repeats some NOTIFYs.  Rounds read committed data.
	 *
	 * The worker runs its statements in its own transactions, as the
	 * bootstrap superuser, with no caller whose user or search_path would
	 * have to be restored afterwards; so instead of OmSpiBegin around each
	 * round, search_path is pinned once for the worker's life.  Its SQL
	 * then resolves nothing in a schema where users can create functions or
	 * operators (the worker is a superuser: that would be an escalation),
	 * and the API functions it calls run as their owner anyway.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("order_mgmt relay");
	round_cxt = AllocSetContextCreate(TopMemoryContext, "order_mgmt relay round",
									  ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("order_mgmt relay started for database \"%s\"", dbname)));

	for (;;)
	{
		RelayOutcome outcome;
		uint64		announced = 0;
		long		wait;

		PaceRounds(last_start);
		ResetLatch(MyLatch);	/* before the round: a commit after it wakes us */
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		last_start = GetCurrentTimestamp();
		/* cannot happen (started after recovery), but never write on a standby */
		outcome = RecoveryInProgress() ? RELAY_IDLE : RelayRound(round_cxt, &announced);
		MemoryContextReset(round_cxt);
		ReportReadiness(outcome, dbname, &missing);
		if (outcome == RELAY_FULL)
			continue;
		/* held back: look soon, less often while nothing moves */
		if (outcome != RELAY_PENDING || announced > 0)
			pending_wait = RELAY_PENDING_MS;
		wait = outcome == RELAY_PENDING ? Min(pending_wait, relay_naptime) : relay_naptime;
		if (outcome == RELAY_PENDING && announced == 0)
			pending_wait = Min(pending_wait * 2, RELAY_PENDING_MAX_MS);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait, PG_WAIT_EXTENSION);
	}
}
