/*
 * order_mgmt.c
 *		Module entry point: GUCs, and small helpers shared by the C files
 *		(running as a table's owner, per-backend caches and their
 *		invalidation).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "order_mgmt.h"

PG_MODULE_MAGIC;

char	   *om_actor = NULL;
char	   *om_reason = NULL;
bool		om_automated = false;
int			om_notify_mode = OM_NOTIFY_COMMIT;

static const struct config_enum_entry notify_mode_options[] = {
	{"commit", OM_NOTIFY_COMMIT, false},
	{"relay", OM_NOTIFY_RELAY, false},
	{"off", OM_NOTIFY_OFF, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/* Define the order_mgmt.* settings. */
void
_PG_init(void)
{
	/* first: relay.c's settings, which the notify_mode check reads */
	OmRelayInit();
	DefineCustomStringVariable("order_mgmt.actor",
							   "Who is acting, recorded on each event (default: session_user).",
							   NULL, &om_actor, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("order_mgmt.reason",
							   "Reason recorded on the events of the current statements.",
							   NULL, &om_reason, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("order_mgmt.automated",
							 "Marks events as written by automation, not by a person.",
							 NULL, &om_automated, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("order_mgmt.notify_mode",
							 "How events are announced on channel order_mgmt_events: commit, relay or off.",
							 NULL, &om_notify_mode, OM_NOTIFY_COMMIT, notify_mode_options,
							 PGC_USERSET, 0, OmCheckNotifyMode, NULL, NULL);
	MarkGUCPrefixReserved("order_mgmt");
}

/*
 * Empty a cache's memory for a rebuild and return it.  The first call also
 * registers the cache's relcache callback: callbacks cannot be removed, so
 * it is done once per backend, and the callback only marks the cache stale.
 */
MemoryContext
OmCacheReset(OmCache *cache)
{
	if (!cache->registered)
	{
		CacheRegisterRelcacheCallback(cache->callback, (Datum) 0);
		cache->registered = true;
	}
	if (cache->cxt == NULL)
	{
		cache->cxt = AllocSetContextCreate(CacheMemoryContext, "order_mgmt cache",
										   ALLOCSET_DEFAULT_SIZES);
		MemoryContextSetIdentifier(cache->cxt, cache->name);
	}
	MemoryContextReset(cache->cxt);
	return cache->cxt;
}

/* OID of a table of the extension's schema; error if the extension is gone. */
Oid
OmRelid(const char *relname)
{
	Oid			nsp = get_namespace_oid(OM_SCHEMA, false);
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "relation %s.%s does not exist", OM_SCHEMA, relname);
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
 * AFTER ... FOR EACH STATEMENT on a table that a per-backend cache is built
 * from (transitions, calendars and the other reference data): send a
 * relcache invalidation for it, so every backend's callback marks its cache
 * stale after commit (and this backend's at once).
 */
static Datum
InvalidateOwnTable(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		elog(ERROR, "order_mgmt: cache invalidation must be a statement trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);	/* ignored for AFTER triggers; not SQL NULL */
}

PG_FUNCTION_INFO_V1(transitions_changed);
Datum
transitions_changed(PG_FUNCTION_ARGS)
{
	return InvalidateOwnTable(fcinfo);
}

PG_FUNCTION_INFO_V1(reference_data_changed);
Datum
reference_data_changed(PG_FUNCTION_ARGS)
{
	return InvalidateOwnTable(fcinfo);
}
