/*
 * order_mgmt.c
 *		Module entry point: GUCs, and small helpers shared by the C files
 *		(running as a table's owner, argument checks, the actor of a step,
 *		the statement trigger that invalidates the caches).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/timestamp.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "order_mgmt.h"

PG_MODULE_MAGIC;

char	   *om_actor = NULL;
char	   *om_reason = NULL;
bool		om_automated = false;
int			om_notify_mode = OM_NOTIFY_COMMIT;
char	   *om_db_role = NULL;
static int	om_return_window_days = 30;

static const struct config_enum_entry notify_mode_options[] = {
	{"commit", OM_NOTIFY_COMMIT, false},
	{"relay", OM_NOTIFY_RELAY, false},
	{"off", OM_NOTIFY_OFF, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/*
 * order_mgmt.db_role may name another role than the session's only when a
 * superuser sets it: on Citus the API (running as the owner) sends the
 * coordinator's session_user to the workers, where session_user is the role
 * Citus connected as (citus.c).  Anyone may set it to their own name or to
 * '' (the default: session_user).
 */
static bool
CheckDbRole(char **newval, void **extra, GucSource source)
{
	/* postgresql.conf and the command line are the DBA's; TEST: ALTER ... SET */
	if (*newval == NULL || (*newval)[0] == '\0' || source <= PGC_S_ARGV || source == PGC_S_TEST)
		return true;
	if (IsTransactionState() &&
		(superuser() || strcmp(*newval, GetUserNameFromId(GetSessionUserId(), false)) == 0))
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("only a superuser may set order_mgmt.db_role to another role than the session's");
	return false;
}

/* Define the order_mgmt.* settings and the cache invalidation callback. */
void
_PG_init(void)
{
	/* first: relay.c's settings, which the notify_mode check reads */
	OmRelayInit();
	DefineCustomStringVariable("order_mgmt.actor",
							   "Who is acting, recorded on each event (default: session_user).",
							   "A claim made by the application; events also record db_role.",
							   &om_actor, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("order_mgmt.reason",
							   "Reason recorded on the events of the current statements.",
							   NULL, &om_reason, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("order_mgmt.automated",
							 "Marks events as written by automation, not by a person.",
							 "A claim made by the application, like order_mgmt.actor.",
							 &om_automated, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("order_mgmt.notify_mode",
							 "How events are announced on channel order_mgmt_events: commit, relay or off.",
							 NULL, &om_notify_mode, OM_NOTIFY_COMMIT, notify_mode_options,
							 PGC_USERSET, 0, OmCheckNotifyMode, NULL, NULL);
	DefineCustomStringVariable("order_mgmt.db_role",
							   "The connected role recorded on events (default: session_user).",
							   "Set by order_mgmt on Citus workers to the coordinator's session_user.",
							   &om_db_role, "",
							   PGC_USERSET, 0, CheckDbRole, NULL, NULL);
	/* a business policy: only a superuser (or ALTER SYSTEM/DATABASE) sets it */
	DefineCustomIntVariable("order_mgmt.return_window_days",
							"Days after an order's last delivery during which returns are accepted.",
							"complete_due_orders completes delivered orders once it has passed.",
							&om_return_window_days, 30, 0, 3650,
							PGC_SUSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("order_mgmt");
	OmCacheInit();
}

/* OID of a table of the extension's schema. */
Oid
OmRelid(const char *relname)
{
	Oid			nsp = get_namespace_oid(OM_SCHEMA, false);
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", OM_SCHEMA, relname),
				 errhint("Is the order_mgmt extension installed at the version of its library?")));
	return relid;
}

/*
 * Switch to the owner of relid, as ri_triggers.c does, so that a role allowed
 * to UPDATE orders can have its event written without holding INSERT on the
 * event log itself.  Transaction abort restores the user on error.
 */
void
OmBecomeOwner(Oid relid, OmSavedUser *saved)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(owner, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
}

void
OmRestoreUser(const OmSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * Run SQL (SPI) as the owner of relid with search_path pinned to
 * pg_catalog, pg_temp, as a SECURITY DEFINER function would: C code runs
 * its SQL from triggers and commit-time callbacks too, where the session's
 * search_path (and whatever functions or operators it puts first) is in
 * force.  Transaction abort undoes both on error.
 */
void
OmSpiBegin(Oid relid, OmSavedUser *saved)
{
	OmBecomeOwner(relid, saved);
	saved->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
OmSpiEnd(const OmSavedUser *saved)
{
	SPI_finish();
	AtEOXact_GUC(true, saved->guc_level);
	OmRestoreUser(saved);
}

/* return_window() -> interval: order_mgmt.return_window_days as days. */
PG_FUNCTION_INFO_V1(return_window);
Datum
return_window(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->day = om_return_window_days;
	PG_RETURN_INTERVAL_P(result);
}

/* The n leading arguments must not be null; names[i] names argument i. */
void
OmRequireArgs(FunctionCallInfo fcinfo, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (names[i] != NULL && PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", names[i])));
}

/* The claimed actor: order_mgmt.actor when set, else the session user. */
const char *
OmCurrentActor(void)
{
	if (om_actor != NULL && om_actor[0] != '\0')
		return om_actor;
	return OmDbRole();
}

/*
 * The role that is connected (session_user): no client can set it.  On a
 * Citus worker, the coordinator's, which the API sends as order_mgmt.db_role.
 */
const char *
OmDbRole(void)
{
	if (om_db_role != NULL && om_db_role[0] != '\0')
		return om_db_role;
	return GetUserNameFromId(GetSessionUserId(), false);
}

/* A plan kept for the backend in *slot, prepared on first use (inside SPI). */
SPIPlanPtr
OmKeepPlan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*slot = plan;
	}
	return *slot;
}

char *
OmDateText(int32 day)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day)));
}

/* current_actor() -> text: the actor recorded on events and ledgers. */
PG_FUNCTION_INFO_V1(current_actor);
Datum
current_actor(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(OmCurrentActor()));
}

/*
 * invalidate_cache(): AFTER ... FOR EACH STATEMENT on a table a cache is
 * built from.  Sends a relcache invalidation for it, so every backend's
 * cache of it is stale after commit (and this backend's at once).
 */
PG_FUNCTION_INFO_V1(invalidate_cache);
Datum
invalidate_cache(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		elog(ERROR, "invalidate_cache must be called as a statement trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * Entry points named by released scripts (0.1.0, 0.3.0): the scripts of an
 * update path create functions that point at them, so they must stay.
 */
PG_FUNCTION_INFO_V1(transitions_changed);
Datum
transitions_changed(PG_FUNCTION_ARGS)
{
	return invalidate_cache(fcinfo);
}

PG_FUNCTION_INFO_V1(reference_data_changed);
Datum
reference_data_changed(PG_FUNCTION_ARGS)
{
	return invalidate_cache(fcinfo);
}
