/*
 * cache.c
 *		Per-backend caches of order_mgmt tables (the lifecycle graph, the
 *		reference data of the delivery promise, the layout of the event log).
 *
 * Every cache follows the same rules, which live here:
 * - One relcache callback for all caches (PostgreSQL allows only ten per
 *   backend, and Citus alone takes five).  It only counts invalidations;
 *   nothing is rebuilt inside it.
 * - Before answering, a cache accepts pending invalidation messages, so a
 *   change committed by another session is seen at the next lookup, in any
 *   isolation level.
 * - A cache is loaded with the latest snapshot, never the transaction's:
 *   a REPEATABLE READ transaction must not rebuild it from data older than
 *   what the next transaction would see (issue 7).  During a parallel query
 *   (in the leader or a worker) no snapshot may be taken, and a worker
 *   starts with cold caches: there a load reads with the query's own
 *   snapshot, which the leader and its workers share, and that version
 *   serves that query only (it may be older than what the next statement
 *   sees).
 * - On Citus (0.9.0), a cache of reference tables reads this node's
 *   placement of each table, not the distributed table: a query through
 *   the distributed planner is refused inside a query on a shard (a
 *   function pushed down to a worker), and the placement is always local.
 *   Statement triggers fire on the placements, so the callback also
 *   counts invalidations of them.
 * - The new version is built aside in its own memory context and published
 *   only when complete; an error leaves the old version stale, not half
 *   rebuilt.  The old version stays readable until the end of the
 *   transaction, so pointers handed out earlier in the same call stay valid.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "order_mgmt.h"

#define OM_MAX_CACHES 8

static OmCache *caches[OM_MAX_CACHES];
static int	ncaches = 0;
static MemoryContext retired_cxt = NULL;	/* old versions, freed at xact end */
static OmCache *loading = NULL;	/* the cache OmCacheRebuild is loading */

/* The one relcache callback: count the invalidation for every cache of relid. */
static void
OmRelcacheCallback(Datum arg, Oid relid)
{
	for (int i = 0; i < ncaches; i++)
	{
		OmCache    *c = caches[i];

		if (relid == InvalidOid)
			c->invalidations++;
		else
			for (int t = 0; t < c->ntables; t++)
				if (c->relids[t] == relid || c->placements[t] == relid)
					c->invalidations++;
	}
}

/* Free the old versions of caches once no pointer into them can be live. */
static void
OmCacheXactCallback(XactEvent event, void *arg)
{
	if ((event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		 event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		 event == XACT_EVENT_PREPARE) && retired_cxt != NULL)
		MemoryContextReset(retired_cxt);
}

/* Called once from _PG_init. */
void
OmCacheInit(void)
{
	CacheRegisterRelcacheCallback(OmRelcacheCallback, (Datum) 0);
	RegisterXactCallback(OmCacheXactCallback, NULL);
}

static void
Register(OmCache *c)
{
	if (c->registered)
		return;
	if (ncaches >= OM_MAX_CACHES)
		elog(ERROR, "too many order_mgmt caches");
	caches[ncaches++] = c;
	c->registered = true;
}

/* Is the published version current?  Accepts pending invalidations first. */
bool
OmCacheValid(OmCache *c)
{
	AcceptInvalidationMessages();
	Register(c);
	if (c->data == NULL || c->loaded_at != c->invalidations)
		return false;
	/* a version read with a parallel query's snapshot: that query only */
	return !c->query_only ||
		(IsInParallelMode() && c->query_lxid == MyProc->lxid &&
		 c->query_cid == GetCurrentCommandId(false));
}

/*
 * Resolve the OIDs of the tables a cache is built from.  The first must
 * exist; the others may be missing in a schema older than the library (the
 * loader then falls back to what that schema meant).
 */
static void
ResolveTables(OmCache *c)
{
	Oid			nsp = get_namespace_oid(OM_SCHEMA, false);

	c->relids[0] = OmRelid(c->tables[0]);
	for (int t = 1; t < c->ntables; t++)
		c->relids[t] = get_relname_relid(c->tables[t], nsp);
}

/* (inside SPI) This node's placements of a cache's reference tables on Citus. */
static void
ResolvePlacements(OmCache *c)
{
	bool		citus = c->reference && OmCitusActive();

	for (int t = 0; t < c->ntables; t++)
		c->placements[t] = citus && OidIsValid(c->relids[t]) ?
			OmCitusLocalPlacement(c->relids[t]) : InvalidOid;
}

/*
 * The relation a load reads for one of the loading cache's tables, schema
 * qualified: the table, or on Citus this node's placement of it.
 */
const char *
OmLoadRel(const char *table)
{
	if (loading != NULL)
		for (int t = 0; t < loading->ntables; t++)
			if (strcmp(loading->tables[t], table) == 0 && OidIsValid(loading->placements[t]))
				return quote_qualified_identifier(OM_SCHEMA, get_rel_name(loading->placements[t]));
	return quote_qualified_identifier(OM_SCHEMA, table);
}

/*
 * Build a new version with load() and publish it.  The count of
 * invalidations is taken before reading, so one that arrives during the
 * load leaves the new version stale.  load() runs inside SPI, as the owner
 * of the tables, in a context that lives only if the load completes.
 */
void *
OmCacheRebuild(OmCache *c, void *(*load) (MemoryContext cxt))
{
	uint64		count;
	MemoryContext cxt;
	MemoryContext old;
	OmSavedUser saved;
	void	   *data;
	OmCache    *prev_loading;

	Register(c);
	ResolveTables(c);
	count = c->invalidations;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "order_mgmt cache", ALLOCSET_SMALL_SIZES);
	MemoryContextSetIdentifier(cxt, c->name);
	OmSpiBegin(c->relids[0], &saved);
	ResolvePlacements(c);
	old = MemoryContextSwitchTo(cxt);
	prev_loading = loading;		/* (an error leaves it set: every load sets it) */
	loading = c;
	data = load(cxt);
	loading = prev_loading;
	MemoryContextSwitchTo(old);
	OmSpiEnd(&saved);

	if (c->cxt != NULL)
	{
		if (retired_cxt == NULL)
			retired_cxt = AllocSetContextCreate(CacheMemoryContext, "order_mgmt retired caches",
												ALLOCSET_SMALL_SIZES);
		MemoryContextSetParent(c->cxt, retired_cxt);
	}
	MemoryContextSetParent(cxt, CacheMemoryContext);
	c->cxt = cxt;
	c->data = data;
	c->loaded_at = count;
	c->query_only = IsInParallelMode();
	if (c->query_only)
	{
		c->query_lxid = MyProc->lxid;
		c->query_cid = GetCurrentCommandId(false);
	}
	return data;
}

/*
 * Run a read-only query for a cache load (inside OmCacheRebuild) with the
 * latest snapshot, or during a parallel query with the query's (see the
 * header).  The result is in SPI_tuptable.  SPI leaves its own context
 * current after a call; the load goes on in the cache's.
 */
void
OmLoadQuery(const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	Snapshot	snap = IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot();

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_execute_snapshot(plan, NULL, NULL, snap, InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", sql);
	MemoryContextSwitchTo(cxt);
}

/* Text of column i of row r of the last load query ("" when null). */
char *
OmLoadText(uint64 r, int i)
{
	char	   *s = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, i);

	return s ? s : "";
}

/* Binary value of column i of row r of the last load query. */
Datum
OmLoadDatum(uint64 r, int i, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, i, isnull);
}

/*
 * Hash tables keyed by up to three strings of any length (ids, statuses,
 * zone names): the key holds pointers, so no id is ever clipped to a fixed
 * buffer.  Entries start with an OmKey whose strings live in the table's
 * context.
 */
static uint32
OmKeyHash(const void *key, Size keysize)
{
	const OmKey *k = (const OmKey *) key;
	uint32		h = 0;

	for (int i = 0; i < OM_KEY_PARTS; i++)
		if (k->s[i] != NULL)
			h = hash_combine(h, hash_bytes((const unsigned char *) k->s[i], strlen(k->s[i])));
	return h;
}

static int
OmKeyMatch(const void *key1, const void *key2, Size keysize)
{
	const OmKey *a = (const OmKey *) key1;
	const OmKey *b = (const OmKey *) key2;

	for (int i = 0; i < OM_KEY_PARTS; i++)
	{
		if ((a->s[i] == NULL) != (b->s[i] == NULL))
			return 1;
		if (a->s[i] != NULL && strcmp(a->s[i], b->s[i]) != 0)
			return 1;
	}
	return 0;
}

HTAB *
OmKeyTable(const char *name, Size entrysize, long nelem)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(OmKey);
	ctl.entrysize = entrysize;
	ctl.hash = OmKeyHash;
	ctl.match = OmKeyMatch;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, Max(nelem, 16), &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static OmKey
MakeKey(const char *a, const char *b, const char *c)
{
	OmKey		k;

	k.s[0] = a;
	k.s[1] = b;
	k.s[2] = c;
	return k;
}

/* The entry for the key, or NULL. */
void *
OmKeyFind(HTAB *t, const char *a, const char *b, const char *c)
{
	OmKey		k = MakeKey(a, b, c);

	return hash_search(t, &k, HASH_FIND, NULL);
}

/*
 * Enter the key (copying its strings into the current memory context, the
 * cache's during a load); *found tells whether it was there already.
 */
void *
OmKeyEnter(HTAB *t, const char *a, const char *b, const char *c, bool *found)
{
	OmKey		k = MakeKey(a, b, c);
	OmKey	   *entry = hash_search(t, &k, HASH_ENTER, found);

	if (!*found)
		for (int i = 0; i < OM_KEY_PARTS; i++)
			entry->s[i] = k.s[i] ? pstrdup(k.s[i]) : NULL;
	return entry;
}
