/*
 * lifecycle.c
 *		The lifecycle trigger: every UPDATE of orders, shipments and returns
 *		must follow an edge of order_mgmt.transitions, and each status change
 *		is recorded as one event.
 *
 * The graph is cached per backend in a hash table.  A statement trigger on
 * the transitions table sends a relcache invalidation for it, and our
 * relcache callback only marks the cache stale; the next lookup reloads it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "order_mgmt.h"

#define STATUS_LEN NAMEDATALEN	/* transitions CHECKs names shorter than 64 */

typedef struct EdgeKey
{
	char		entity[STATUS_LEN];
	char		from[STATUS_LEN];
	char		to[STATUS_LEN];	/* "" marks "from has outgoing edges" */
} EdgeKey;

typedef struct Edge
{
	EdgeKey		key;
	char		activity[STATUS_LEN];
	int			nrequires;
	char	  **requires;		/* columns that must be non-null */
} Edge;

static HTAB *edges = NULL;
static MemoryContext edges_cxt = NULL;
static bool edges_valid = false;
static Oid	transitions_relid = InvalidOid;
static SPIPlanPtr shipped_plan = NULL;

/* Relcache callback: mark the graph stale; never reload here. */
static void
TransitionsInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == transitions_relid)
		edges_valid = false;
}

static OmCache edges_cache = {"order_mgmt transitions", TransitionsInvalidate};

static bool
MakeKey(EdgeKey *key, const char *entity, const char *from, const char *to)
{
	memset(key, 0, sizeof(EdgeKey));
	if (strlen(entity) >= STATUS_LEN || strlen(from) >= STATUS_LEN || strlen(to) >= STATUS_LEN)
		return false;
	strlcpy(key->entity, entity, STATUS_LEN);
	strlcpy(key->from, from, STATUS_LEN);
	strlcpy(key->to, to, STATUS_LEN);
	return true;
}

/* Copy the requires text[] of a transitions row into the cache context. */
static void
StoreRequires(Edge *edge, Datum arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	edge->requires = MemoryContextAlloc(edges_cxt, sizeof(char *) * Max(n, 1));
	edge->nrequires = 0;
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			edge->requires[edge->nrequires++] =
				MemoryContextStrdup(edges_cxt, TextDatumGetCString(elems[i]));
}

static void
AddEdge(HTAB *table, HeapTuple tup, TupleDesc desc)
{
	EdgeKey		key;
	Edge	   *edge;
	bool		isnull;
	char	   *entity = SPI_getvalue(tup, desc, 1);
	char	   *from = SPI_getvalue(tup, desc, 2);

	if (!MakeKey(&key, entity, from, SPI_getvalue(tup, desc, 3)))
		return;					/* unreachable: the table CHECKs lengths */
	edge = hash_search(table, &key, HASH_ENTER, NULL);
	strlcpy(edge->activity, SPI_getvalue(tup, desc, 4), STATUS_LEN);
	StoreRequires(edge, SPI_getbinval(tup, desc, 5, &isnull));

	/* remember that "from" is not final */
	MakeKey(&key, entity, from, "");
	edge = hash_search(table, &key, HASH_ENTER, NULL);
	edge->activity[0] = '\0';
	edge->nrequires = 0;
	edge->requires = NULL;
}

/* (Re)build the graph cache from the transitions table. */
static void
LoadEdges(void)
{
	HASHCTL		ctl;
	OmSavedUser saved;
	HTAB	   *table;

	edges_cxt = OmCacheReset(&edges_cache);
	edges = NULL;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(EdgeKey);
	ctl.entrysize = sizeof(Edge);
	ctl.hcxt = edges_cxt;

	/*
	 * Mark valid first, so an invalidation that arrives while we read wins;
	 * publish the table only when complete, so an error leaves no half cache.
	 */
	transitions_relid = OmRelid("transitions");
	edges_valid = true;
	OmBecomeOwner(transitions_relid, &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT entity, from_status, to_status, activity, requires FROM "
					OM_SCHEMA ".transitions", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.transitions", OM_SCHEMA);
	table = hash_create("order_mgmt transitions", Max(SPI_processed * 2, 16), &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (uint64 i = 0; i < SPI_processed; i++)
		AddEdge(table, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	edges = table;
	SPI_finish();
	OmRestoreUser(&saved);
}

static Edge *
FindEdge(const char *entity, const char *from, const char *to)
{
	EdgeKey		key;

	if (!edges_valid || edges == NULL)
		LoadEdges();
	if (!MakeKey(&key, entity, from, to))
		return NULL;
	return hash_search(edges, &key, HASH_FIND, NULL);
}

/* Text value of a column of tup, or NULL. */
static char *
ColumnText(HeapTuple tup, TupleDesc desc, int attnum)
{
	return attnum > 0 ? SPI_getvalue(tup, desc, attnum) : NULL;
}

static int
ColumnNumber(Relation rel, const char *name)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		elog(ERROR, "lifecycle trigger on \"%s\": column \"%s\" not found",
			 RelationGetRelationName(rel), name);
	return attnum;
}

static int64
ColumnInt64(HeapTuple tup, Relation rel, const char *name)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, RelationGetDescr(rel), ColumnNumber(rel, name), &isnull);

	if (isnull)
		elog(ERROR, "lifecycle trigger: %s is null", name);
	return DatumGetInt64(d);
}

static void
RejectMove(const char *entity, int64 id, const char *from, const char *to, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_OM_ILLEGAL_TRANSITION),
			 errmsg("illegal %s status change for %s %lld", entity, entity, (long long) id),
			 errdetail("From \"%s\" to \"%s\": %s", from, to ? to : "NULL", why),
			 errhint("Legal moves are listed in %s.transitions.", OM_SCHEMA)));
}

/* Entering to_status needs these columns filled in (e.g. packed: weight). */
static void
CheckRequires(const Edge *edge, Relation rel, HeapTuple newtup, const char *entity, int64 id)
{
	for (int i = 0; i < edge->nrequires; i++)
	{
		int			attnum = ColumnNumber(rel, edge->requires[i]);

		if (heap_attisnull(newtup, attnum, RelationGetDescr(rel)))
			ereport(ERROR,
					(errcode(ERRCODE_OM_REQUIREMENT_MISSING),
					 errmsg("%s %lld cannot become \"%s\" without %s", entity, (long long) id,
							edge->key.to, edge->requires[i]),
					 errdetail("Status \"%s\" requires %s to be set.", edge->key.to,
							   edge->requires[i])));
	}
}

/* An order may be cancelled only while nothing has left the building. */
static void
CheckNothingShipped(int64 order_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(order_id)};
	OmSavedUser saved;
	bool		shipped;

	OmBecomeOwner(OmRelid("order_lines"), &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (shipped_plan == NULL)
	{
		shipped_plan = SPI_prepare("SELECT 1 FROM " OM_SCHEMA ".order_lines"
								   " WHERE order_id OPERATOR(pg_catalog.=) $1"
								   " AND qty_shipped OPERATOR(pg_catalog.>) 0 LIMIT 1",
								   1, argtypes);
		if (shipped_plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(shipped_plan);
	}
	if (SPI_execute_plan(shipped_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.order_lines", OM_SCHEMA);
	shipped = SPI_processed > 0;
	SPI_finish();
	OmRestoreUser(&saved);
	if (shipped)
		ereport(ERROR,
				(errcode(ERRCODE_OM_ALREADY_SHIPPED),
				 errmsg("order %lld cannot be cancelled: goods have been shipped",
						(long long) order_id),
				 errhint("Request a return instead.")));
}

/*
 * Decide whether from -> to is legal and return the event activity.
 * Leaving on_hold is legal only back to held_from, or along an edge from
 * on_hold (cancelled in the default graph).
 */
static const char *
Decide(const char *entity, int64 id, const char *from, const char *to,
	   const char *held_from, Relation rel, HeapTuple newtup)
{
	Edge	   *edge;

	if (to == NULL)
		RejectMove(entity, id, from, to, "the status cannot be null.");
	if (strcmp(from, "on_hold") == 0 && held_from != NULL && strcmp(to, held_from) == 0)
		return "hold_released";
	edge = FindEdge(entity, from, to);
	if (edge == NULL)
	{
		if (FindEdge(entity, from, "") == NULL)
			RejectMove(entity, id, from, to, "the current status is final.");
		if (strcmp(from, "on_hold") == 0)
			RejectMove(entity, id, from, to,
					   psprintf("a hold may only be left for \"%s\" (where it was held from) or along an edge from on_hold.",
								held_from ? held_from : "?"));
		RejectMove(entity, id, from, to, "no such edge in the lifecycle graph.");
	}
	CheckRequires(edge, rel, newtup, entity, id);
	return edge->activity;
}

/* Clients cannot write held_from: an UPDATE that changes it gets it back. */
static HeapTuple
KeepHeldFrom(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc, int held_att)
{
	char	   *old_held;
	char	   *new_held;
	bool		isnull;
	Datum		value;

	if (held_att <= 0)
		return newtup;
	old_held = ColumnText(oldtup, desc, held_att);
	new_held = ColumnText(newtup, desc, held_att);
	if (old_held == NULL ? new_held == NULL : new_held != NULL && strcmp(old_held, new_held) == 0)
		return newtup;
	value = SPI_getbinval(oldtup, desc, held_att, &isnull);
	return heap_modify_tuple_by_cols(newtup, desc, 1, &held_att, &value, &isnull);
}

/* Entering on_hold remembers where from; any other move clears it. */
static HeapTuple
SetHeldFrom(HeapTuple newtup, TupleDesc desc, int held_att, const char *from, const char *to)
{
	bool		isnull = strcmp(to, "on_hold") != 0;
	Datum		value = isnull ? (Datum) 0 : CStringGetTextDatum(from);

	if (held_att <= 0)
		return newtup;
	return heap_modify_tuple_by_cols(newtup, desc, 1, &held_att, &value, &isnull);
}

static void
CheckTriggerCall(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "lifecycle_trigger: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)
		|| !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "lifecycle_trigger: must be fired BEFORE UPDATE FOR EACH ROW");
	if (trigdata->tg_trigger->tgnargs != 2)
		elog(ERROR, "lifecycle_trigger: expects (entity, id_column)");
}

/*
 * lifecycle_trigger(entity, id_column): BEFORE UPDATE FOR EACH ROW.
 * Keeps held_from in step with on_hold and writes the event row.
 */
PG_FUNCTION_INFO_V1(lifecycle_trigger);
Datum
lifecycle_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	oldtup,
				newtup;
	int			status_att,
				held_att;
	char	   *from,
			   *to,
			   *held_from = NULL;
	const char *entity;
	const char *activity;
	int64		id;
	OmEvent		ev = {0};

	CheckTriggerCall(fcinfo);
	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;
	entity = trigdata->tg_trigger->tgargs[0];
	status_att = ColumnNumber(rel, "status");
	held_att = SPI_fnumber(desc, "held_from");	/* only orders have it */

	from = ColumnText(oldtup, desc, status_att);
	to = ColumnText(newtup, desc, status_att);
	if (held_att > 0)
		held_from = ColumnText(oldtup, desc, held_att);

	if (from == NULL || (to != NULL && strcmp(from, to) == 0))
	{
		/* not a status change (a NULL status cannot be left: NOT NULL) */
		if (from == NULL && to != NULL)
			RejectMove(entity, 0, "NULL", to, "the current status is NULL.");
		return PointerGetDatum(KeepHeldFrom(oldtup, newtup, desc, held_att));
	}

	id = ColumnInt64(oldtup, rel, trigdata->tg_trigger->tgargs[1]);
	activity = Decide(entity, id, from, to, held_from, rel, newtup);
	ev.order_id = ColumnInt64(oldtup, rel, "order_id");
	if (strcmp(entity, "order") == 0 && strcmp(to, "cancelled") == 0)
		CheckNothingShipped(ev.order_id);

	newtup = SetHeldFrom(newtup, desc, held_att, from, to);

	ev.entity = entity;
	ev.entity_id = id;
	ev.event_type = psprintf("%s.%s", entity, activity);
	ev.from_status = from;
	ev.to_status = to;
	EmitEvent(&ev);
	return PointerGetDatum(newtup);
}
