/*
 * lifecycle.c
 *		The lifecycle trigger: every UPDATE of orders, shipments and returns
 *		must follow an edge of order_mgmt.transitions, and each status change
 *		is recorded as one event.  What a status means (statuses.class: held,
 *		cancelled, shipping, ...) is data too, read from the same cache.
 *
 * The graph and the classes are one cache (cache.c): statement triggers on
 * transitions and statuses invalidate it, and it is reloaded from the
 * latest snapshot at the next lookup.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "order_mgmt.h"

typedef struct Status
{
	OmKey		key;			/* entity, status */
	char	   *class;			/* NULL: no class (a schema before 0.4.0) */
	bool		has_exits;		/* some edge leaves it */
} Status;

typedef struct Edge
{
	OmKey		key;			/* entity, from, to */
	char	   *activity;
	int			nrequires;
	char	  **requires;		/* columns that must be non-null */
} Edge;

typedef struct Graph
{
	HTAB	   *statuses;
	HTAB	   *edges;
} Graph;

static OmCache graph_cache = {
	.name = "order_mgmt lifecycle graph",
	.ntables = 2,
	.tables = {"transitions", "statuses"},
	.reference = true,
};

/*
 * Schemas before 0.4.0 have no statuses table; their CHECKs and triggers
 * tie "held" to on_hold and "cancelled" to cancelled, so those two classes
 * apply until ALTER EXTENSION UPDATE.
 */
#define STATUSES_BEFORE_0_4 \
	"SELECT * FROM (VALUES ('order', 'on_hold', 'held'), ('order', 'cancelled', 'cancelled')) s"

static void
LoadStatuses(Graph *g)
{
	bool		found;
	bool		has_table = OidIsValid(graph_cache.relids[1]);

	OmLoadQuery(has_table ? psprintf("SELECT entity, status, class FROM %s", OmLoadRel("statuses"))
				: STATUSES_BEFORE_0_4);
	g->statuses = OmKeyTable("order_mgmt statuses", sizeof(Status), SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Status	   *s = OmKeyEnter(g->statuses, OmLoadText(r, 1), OmLoadText(r, 2), NULL, &found);

		s->class = pstrdup(OmLoadText(r, 3));
		s->has_exits = false;
	}
}

/* Copy the requires text[] of a transitions row. */
static void
StoreRequires(Edge *edge, Datum arr, bool isnull)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n = 0;

	edge->nrequires = 0;
	edge->requires = NULL;
	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	edge->requires = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			edge->requires[edge->nrequires++] = TextDatumGetCString(elems[i]);
}

static void
LoadEdges(Graph *g)
{
	bool		found;

	OmLoadQuery(psprintf("SELECT entity, from_status, to_status, activity, requires FROM %s",
						 OmLoadRel("transitions")));
	g->edges = OmKeyTable("order_mgmt transitions", sizeof(Edge), SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		const char *entity = OmLoadText(r, 1);
		const char *from = OmLoadText(r, 2);
		Edge	   *e = OmKeyEnter(g->edges, entity, from, OmLoadText(r, 3), &found);
		Status	   *s;
		bool		isnull;
		Datum		req = OmLoadDatum(r, 5, &isnull);

		e->activity = pstrdup(OmLoadText(r, 4));
		StoreRequires(e, req, isnull);
		s = OmKeyEnter(g->statuses, entity, from, NULL, &found);
		if (!found)
			s->class = NULL;	/* only with a schema before 0.4.0 */
		s->has_exits = true;
	}
}

static void *
LoadGraph(MemoryContext cxt)
{
	Graph	   *g = palloc0(sizeof(Graph));

	LoadStatuses(g);
	LoadEdges(g);
	return g;
}

static Graph *
GetGraph(void)
{
	if (OmCacheValid(&graph_cache))
		return graph_cache.data;
	return OmCacheRebuild(&graph_cache, LoadGraph);
}

/* The class of a status (statuses.class), or NULL when it has none. */
const char *
OmStatusClass(const char *entity, const char *status)
{
	Status	   *s = OmKeyFind(GetGraph()->statuses, entity, status, NULL);

	return s ? s->class : NULL;
}

static bool
IsClass(const char *entity, const char *status, const char *class)
{
	const char *c = status ? OmStatusClass(entity, status) : NULL;

	return c != NULL && strcmp(c, class) == 0;
}

static void
RejectMove(const char *entity, int64 id, const char *from, const char *to, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_OM_ILLEGAL_TRANSITION),
			 errmsg("illegal status change of %s %lld", entity, (long long) id),
			 errdetail("The move from \"%s\" to \"%s\" is not allowed: %s", from,
					   to ? to : "NULL", why),
			 errhint("Legal moves are the rows of %s.transitions.", OM_SCHEMA)));
}

static int
ColumnNumber(Relation rel, const char *name)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", name,
						RelationGetRelationName(rel)),
				 errdetail("The lifecycle trigger needs it (a requires entry of %s.transitions names it, or the trigger's arguments do).",
						   OM_SCHEMA)));
	return attnum;
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
							edge->key.s[2], edge->requires[i]),
					 errdetail("Status \"%s\" requires %s to be set.", edge->key.s[2],
							   edge->requires[i])));
	}
}

/*
 * Decide whether from -> to is legal and return the event activity.  A held
 * status (class held) may always be left back to held_from; otherwise the
 * move needs an edge.
 */
static const char *
Decide(const char *entity, int64 id, const char *from, const char *to,
	   const char *held_from, Relation rel, HeapTuple newtup)
{
	Graph	   *g = GetGraph();
	Edge	   *edge;
	Status	   *s;

	if (to == NULL)
		RejectMove(entity, id, from, to, "the status cannot be null.");
	if (held_from != NULL && strcmp(to, held_from) == 0 && IsClass(entity, from, "held"))
		return "hold_released";
	edge = OmKeyFind(g->edges, entity, from, to);
	if (edge != NULL)
	{
		CheckRequires(edge, rel, newtup, entity, id);
		return edge->activity;
	}
	s = OmKeyFind(g->statuses, entity, from, NULL);
	if (s == NULL || !s->has_exits)
		RejectMove(entity, id, from, to, "the current status is final.");
	if (IsClass(entity, from, "held"))
		RejectMove(entity, id, from, to,
				   psprintf("a hold may only be left for \"%s\" (where it was held from) or along an edge.",
							held_from ? held_from : "?"));
	RejectMove(entity, id, from, to, "no such edge in the lifecycle graph.");
	return NULL;				/* not reached */
}

/*
 * The one home of "has anything of this order left the building?": a line
 * with qty_shipped > 0 or a shipment with dispatched_at.  Read with the
 * latest snapshot, so a dispatch committed after a REPEATABLE READ
 * snapshot still counts.
 */
void
OmCheckNothingDispatched(int64 order_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(order_id)};
	OmSavedUser saved;
	bool		dispatched;

	OmSpiBegin(OmRelid("order_lines"), &saved);
	OmKeepPlan(&plan, "SELECT 1 FROM " OM_SCHEMA ".order_lines"
			   " WHERE order_id OPERATOR(pg_catalog.=) $1 AND qty_shipped OPERATOR(pg_catalog.>) 0"
			   " UNION ALL SELECT 1 FROM " OM_SCHEMA ".shipments"
			   " WHERE order_id OPERATOR(pg_catalog.=) $1 AND dispatched_at IS NOT NULL LIMIT 1",
			   1, argtypes);
	if (SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.order_lines", OM_SCHEMA);
	dispatched = SPI_processed > 0;
	OmSpiEnd(&saved);
	if (dispatched)
		ereport(ERROR,
				(errcode(ERRCODE_OM_ALREADY_SHIPPED),
				 errmsg("order %lld cannot be cancelled", (long long) order_id),
				 errdetail("Goods of the order have been dispatched."),
				 errhint("Request a return instead.")));
}

/* Clients cannot write held_from: an UPDATE that changes it gets it back. */
static HeapTuple
KeepHeldFrom(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc, int held_att)
{
	bool		isnull;
	Datum		value;

	if (held_att <= 0)
		return newtup;
	value = SPI_getbinval(oldtup, desc, held_att, &isnull);
	return heap_modify_tuple_by_cols(newtup, desc, 1, &held_att, &value, &isnull);
}

/* Entering a held status remembers where from; any other move clears it. */
static HeapTuple
SetHeldFrom(HeapTuple newtup, TupleDesc desc, int held_att, const char *from, bool held)
{
	bool		isnull = !held;
	Datum		value = held ? CStringGetTextDatum(from) : (Datum) 0;

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

static int64
ColumnInt64(HeapTuple tup, Relation rel, const char *name)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, RelationGetDescr(rel), ColumnNumber(rel, name), &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("column \"%s\" of relation \"%s\" is null", name,
						RelationGetRelationName(rel))));
	return DatumGetInt64(d);
}

/*
 * lifecycle_trigger(entity, id_column): BEFORE UPDATE FOR EACH ROW.
 * Checks the move, keeps held_from in step with the held class and writes
 * the event row.
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

	from = SPI_getvalue(oldtup, desc, status_att);
	to = SPI_getvalue(newtup, desc, status_att);
	if (held_att > 0)
		held_from = SPI_getvalue(oldtup, desc, held_att);

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
	if (strcmp(entity, "order") == 0 && IsClass(entity, to, "cancelled"))
		OmCheckNothingDispatched(ev.order_id);
	/* 0.5.0: a shipping- or delivered-class status must agree with the lines */
	if (strcmp(entity, "order") == 0)
		OmCheckLinesAgree(ev.order_id, to);

	newtup = SetHeldFrom(newtup, desc, held_att, from, IsClass(entity, to, "held"));

	ev.entity = entity;
	ev.entity_id = id;
	ev.event_type = psprintf("%s.%s", entity, activity);
	ev.from_status = from;
	ev.to_status = to;
	EmitEvent(&ev);
	return PointerGetDatum(newtup);
}

/* status_class(entity, status) -> text: statuses.class, or NULL. */
PG_FUNCTION_INFO_V1(status_class);
Datum
status_class(PG_FUNCTION_ARGS)
{
	const char *c;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	c = OmStatusClass(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					  text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (c == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(c));
}

/*
 * Trigger conditions on a status move (the WHEN clauses of the rules that
 * follow one).  PostgreSQL 15 reads a trigger's WHEN expression from its
 * stored text and plans it again for every statement that fires the
 * trigger: written as three status_class calls with IN lists, the
 * conditions of the two fulfilment triggers cost a shipment status update
 * 15-20 % (bench/RESULTS.md).  One call of these is the same test.
 */

/* Is class (NULL: the status has none) one of the non-null classes. */
static bool
ClassIn(const char *class, ArrayType *classes)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (class == NULL)
		return false;
	deconstruct_array(classes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), class) == 0)
			return true;
	return false;
}

/* status_in_class(entity, status, classes) -> boolean (strict). */
PG_FUNCTION_INFO_V1(status_in_class);
Datum
status_in_class(PG_FUNCTION_ARGS)
{
	const char *entity = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(ClassIn(OmStatusClass(entity, text_to_cstring(PG_GETARG_TEXT_PP(1))),
						   PG_GETARG_ARRAYTYPE_P(2)));
}

/*
 * class_entered(entity, old_status, new_status, classes) -> boolean
 * (strict): the move leaves the class of old_status (or no class) for one
 * of classes.
 */
PG_FUNCTION_INFO_V1(class_entered);
Datum
class_entered(PG_FUNCTION_ARGS)
{
	const char *entity = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *from = OmStatusClass(entity, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	const char *to = OmStatusClass(entity, text_to_cstring(PG_GETARG_TEXT_PP(2)));

	if (from != NULL && to != NULL && strcmp(from, to) == 0)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(ClassIn(to, PG_GETARG_ARRAYTYPE_P(3)));
}

/*
 * statuses_of_class(entity, class) -> text[]: the statuses of a class, so
 * an UPDATE can test a column against them (x.status = ANY (...)): Citus
 * plans no UPDATE whose WHERE calls a STABLE function on a column.
 */
PG_FUNCTION_INFO_V1(statuses_of_class);
Datum
statuses_of_class(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"entity", "class"};
	const char *entity;
	const char *class;
	HASH_SEQ_STATUS it;
	Status	   *st;
	ArrayBuildState *acc;

	OmRequireArgs(fcinfo, names, 2);
	entity = text_to_cstring(PG_GETARG_TEXT_PP(0));
	class = text_to_cstring(PG_GETARG_TEXT_PP(1));
	acc = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	hash_seq_init(&it, GetGraph()->statuses);
	while ((st = hash_seq_search(&it)) != NULL)
		if (strcmp(st->key.s[0], entity) == 0 && st->class != NULL && strcmp(st->class, class) == 0)
			acc = accumArrayResult(acc, CStringGetTextDatum(st->key.s[1]), false, TEXTOID,
								   CurrentMemoryContext);
	PG_RETURN_DATUM(makeArrayResult(acc, CurrentMemoryContext));
}

/* check_not_dispatched(order_id): OM006 when goods have left (see above). */
PG_FUNCTION_INFO_V1(check_not_dispatched);
Datum
check_not_dispatched(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"order_id"};

	OmRequireArgs(fcinfo, names, 1);
	OmCheckNothingDispatched(PG_GETARG_INT64(0));
	PG_RETURN_VOID();
}
