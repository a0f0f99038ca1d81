/*
 * order_promise.c
 *		The promise of an order as it stands: each open line starts from its
 *		warehouse at placed_at (or its ready_at), the order arrives with its
 *		latest line.  estimate_order_delivery, and the trigger that stores
 *		the promise when an order is confirmed.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "promise.h"

typedef struct OmOrderInfo
{
	int64		order_id;
	char	   *warehouse_id;	/* NULL when none */
	char	   *service_id;
	char	   *country;
	char	   *postal;
	TimestampTz placed_at;
	bool		has_requested;
	DateADT		requested;
} OmOrderInfo;

typedef struct OmLineStart
{
	OmWarehouse *w;
	TimestampTz start;
} OmLineStart;

typedef struct OmOrderResult
{
	bool		known;
	OmEstimate	e;
	char		service_id[OM_ID_LEN];
	char		note[256];
} OmOrderResult;

static SPIPlanPtr order_plan = NULL;
static SPIPlanPtr lines_plan = NULL;

static SPIPlanPtr
KeepPlan(SPIPlanPtr *slot, const char *sql)
{
	Oid			argtypes[1] = {INT8OID};

	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, 1, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*slot = plan;
	}
	return *slot;
}

static void
Unknown(OmOrderResult *r, const char *note)
{
	r->known = false;
	strlcpy(r->note, note, sizeof(r->note));
}

/*
 * Where and when each open line starts: its warehouse (the order's when the
 * line names none) and placed_at, or its ready_at when later.  A
 * backordered line without ready_at makes the estimate unknown.
 */
static OmLineStart *
LineStarts(const OmOrderInfo *o, int *nlines, OmOrderResult *r)
{
	SPITupleTable *tab;
	Datum		arg = Int64GetDatum(o->order_id);
	OmLineStart *starts;
	int			n = 0;

	if (SPI_execute_plan(KeepPlan(&lines_plan,
								  "SELECT line_no, warehouse_id, ready_at, qty_backordered FROM "
								  OM_SCHEMA ".order_lines WHERE order_id OPERATOR(pg_catalog.=) $1"
								  " AND qty OPERATOR(pg_catalog.>) qty_cancelled ORDER BY line_no"),
						 &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.order_lines", OM_SCHEMA);
	tab = SPI_tuptable;
	starts = palloc(sizeof(OmLineStart) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed && r->known; i++)
	{
		HeapTuple	tup = tab->vals[i];
		bool		isnull,
					ready_null;
		char	   *line_no = SPI_getvalue(tup, tab->tupdesc, 1);
		char	   *wid = SPI_getvalue(tup, tab->tupdesc, 2);
		Datum		ready = SPI_getbinval(tup, tab->tupdesc, 3, &ready_null);
		int32		backordered = DatumGetInt32(SPI_getbinval(tup, tab->tupdesc, 4, &isnull));
		OmLineStart *ls = &starts[n++];

		if (wid == NULL)
			wid = o->warehouse_id;
		ls->w = (wid && strlen(wid) < OM_ID_LEN) ? OmFindWarehouse(wid) : NULL;
		if (wid == NULL)
			Unknown(r, psprintf("line %s has no warehouse (nor has the order)", line_no));
		else if (ls->w == NULL)
			Unknown(r, psprintf("warehouse \"%s\" of line %s does not exist", wid, line_no));
		else if (OmWarehouseProblem(ls->w))
			Unknown(r, OmWarehouseProblem(ls->w));
		else if (backordered > 0 && ready_null)
			Unknown(r, psprintf("line %s is backordered and has no ready date", line_no));
		ls->start = o->placed_at;
		if (!ready_null && DatumGetTimestampTz(ready) > ls->start)
			ls->start = DatumGetTimestampTz(ready);
	}
	*nlines = n;
	return starts;
}

/* The order estimate for one service: the latest line, in full. */
static void
EstimateLines(const OmService *s, const OmLineStart *lines, int n, const char *dest,
			  OmEstimate *out)
{
	for (int i = 0; i < n; i++)
	{
		OmEstimate	e;

		OmEstimateCore(lines[i].w, s, dest, lines[i].start, &e);
		if (i == 0)
		{
			*out = e;
			continue;
		}
		out->ship_earliest = Max(out->ship_earliest, e.ship_earliest);
		out->ship_latest = Max(out->ship_latest, e.ship_latest);
		out->delivery_earliest = Max(out->delivery_earliest, e.delivery_earliest);
		out->delivery_latest = Max(out->delivery_latest, e.delivery_latest);
		out->cost = Max(out->cost, e.cost);
	}
}

/*
 * The default service of an order without one: the cheapest active service
 * whose latest delivery meets requested_delivery; when none does (or none
 * was requested), the cheapest overall... see README "Delivery promise".
 */
static OmService *
DefaultService(const OmOrderInfo *o, const OmLineStart *lines, int n, const char *dest,
			   OmEstimate *best)
{
	OmService  *found = NULL;
	int			nservices;
	OmService **service_list = OmServiceList(&nservices);

	for (int pass = 0; pass < 2 && found == NULL; pass++)
	{
		/* pass 0: cheapest meeting the request; pass 1: fastest */
		bool		deadline = pass == 0 && o->has_requested;
		OmStrategy	strategy = (pass == 0) ? OM_CHEAPEST : OM_FASTEST;

		for (int i = 0; i < nservices; i++)
		{
			OmService  *s = service_list[i];
			OmEstimate	e;

			if (!s->active)
				continue;
			EstimateLines(s, lines, n, dest, &e);
			if (deadline && e.delivery_latest > o->requested)
				continue;
			if (found == NULL || OmBetter(&e, best, strategy))
			{
				found = s;
				*best = e;
			}
		}
	}
	return found;
}

/* The current estimate of an order; run inside SPI, caches current. */
static void
EstimateOrder(const OmOrderInfo *o, OmOrderResult *r)
{
	OmLineStart *lines;
	int			n;
	const char *dest;
	char		country[3],
				postal[OM_ID_LEN];
	OmService  *s = NULL;

	memset(r, 0, sizeof(*r));
	r->known = true;
	lines = LineStarts(o, &n, r);
	if (!r->known)
		return;
	if (n == 0)
	{
		/* no open line: the order's own warehouse, from placed_at */
		OmWarehouse *w = o->warehouse_id && strlen(o->warehouse_id) < OM_ID_LEN ?
			OmFindWarehouse(o->warehouse_id) : NULL;

		if (w == NULL || OmWarehouseProblem(w))
		{
			Unknown(r, w ? OmWarehouseProblem(w) : "the order has no open line and no warehouse");
			return;
		}
		lines[0].w = w;
		lines[0].start = o->placed_at;
		n = 1;
	}
	OmNormalizeDestination(o->country, strlen(o->country), o->postal,
						 o->postal ? strlen(o->postal) : 0, country, postal);
	dest = OmDestZone(country, postal);
	if (o->service_id != NULL)
	{
		s = strlen(o->service_id) < OM_ID_LEN ? OmFindService(o->service_id) : NULL;
		if (s == NULL)
		{
			Unknown(r, psprintf("service \"%s\" does not exist", o->service_id));
			return;
		}
		EstimateLines(s, lines, n, dest, &r->e);
	}
	else if ((s = DefaultService(o, lines, n, dest, &r->e)) == NULL)
	{
		Unknown(r, "no active service exists");
		return;
	}
	strlcpy(r->service_id, s->id, OM_ID_LEN);
}

static void
ResultDatums(const OmOrderResult *r, Datum *extra, bool *nulls)
{
	extra[0] = BoolGetDatum(r->known);
	nulls[0] = false;
	extra[1] = r->known ? CStringGetTextDatum(r->service_id) : (Datum) 0;
	nulls[1] = !r->known;
	extra[2] = r->known ? (Datum) 0 : CStringGetTextDatum(r->note);
	nulls[2] = r->known;
}

/*
 * estimate_order_delivery(order_id) -> the estimate record plus known,
 * service_id and note.  An order the rules cannot estimate (no warehouse,
 * unknown service, a backordered line with no ready date) gives known =
 * false, null dates and the reason in note: never a guess.
 */
PG_FUNCTION_INFO_V1(estimate_order_delivery);
Datum
estimate_order_delivery(PG_FUNCTION_ARGS)
{
	Datum		arg;
	OmSavedUser saved;
	OmOrderInfo o;
	OmOrderResult r;
	SPITupleTable *tab;
	bool		isnull;
	Datum		extra[3];
	bool		extra_nulls[3];

	OmRequireArg(fcinfo, 0, "estimate_order_delivery", "order_id");
	memset(&o, 0, sizeof(o));
	o.order_id = PG_GETARG_INT64(0);
	arg = Int64GetDatum(o.order_id);
	OmEnsurePromiseData();
	OmBecomeOwner(OmRelid("orders"), &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(KeepPlan(&order_plan,
								  "SELECT warehouse_id, service_id, ship_to_country::pg_catalog.text,"
								  " ship_to_postal, placed_at, requested_delivery FROM "
								  OM_SCHEMA ".orders WHERE order_id OPERATOR(pg_catalog.=) $1"),
						 &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.orders", OM_SCHEMA);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("order %lld does not exist", (long long) o.order_id)));
	tab = SPI_tuptable;
	o.warehouse_id = SPI_getvalue(tab->vals[0], tab->tupdesc, 1);
	o.service_id = SPI_getvalue(tab->vals[0], tab->tupdesc, 2);
	o.country = SPI_getvalue(tab->vals[0], tab->tupdesc, 3);
	o.postal = SPI_getvalue(tab->vals[0], tab->tupdesc, 4);
	o.placed_at = DatumGetTimestampTz(SPI_getbinval(tab->vals[0], tab->tupdesc, 5, &isnull));
	o.requested = DatumGetDateADT(SPI_getbinval(tab->vals[0], tab->tupdesc, 6, &isnull));
	o.has_requested = !isnull;
	EstimateOrder(&o, &r);
	SPI_finish();
	OmRestoreUser(&saved);
	ResultDatums(&r, extra, extra_nulls);
	return OmEstimateDatum(fcinfo, &r.e, 7, extra, extra_nulls, r.known);
}

/* Text value of a named column of a trigger tuple, or NULL. */
static char *
TupleText(HeapTuple tup, TupleDesc desc, const char *col)
{
	int			att = SPI_fnumber(desc, col);

	if (att <= 0)
		elog(ERROR, "order_mgmt promise trigger: column \"%s\" not found", col);
	return SPI_getvalue(tup, desc, att);
}

static Datum
TupleBin(HeapTuple tup, TupleDesc desc, const char *col, bool *isnull)
{
	int			att = SPI_fnumber(desc, col);

	if (att <= 0)
		elog(ERROR, "order_mgmt promise trigger: column \"%s\" not found", col);
	return SPI_getbinval(tup, desc, att, isnull);
}

/*
 * promise_trigger: BEFORE UPDATE FOR EACH ROW on orders, after the
 * lifecycle trigger.  When the order becomes confirmed and has no promise
 * yet, stores its current estimate as the promise (nothing when unknown).
 */
PG_FUNCTION_INFO_V1(promise_trigger);
Datum
promise_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	char	   *from,
			   *to;
	const char *cols[4] = {"promised_ship_earliest", "promised_ship_latest",
	"promised_delivery_earliest", "promised_delivery_latest"};
	int			atts[4];
	Datum		values[4];
	bool		nulls[4] = {0};
	OmOrderInfo o;
	OmOrderResult r;
	OmSavedUser saved;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "promise_trigger: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)
		|| !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "promise_trigger: must be fired BEFORE UPDATE FOR EACH ROW");
	desc = RelationGetDescr(trigdata->tg_relation);
	newtup = trigdata->tg_newtuple;
	from = TupleText(trigdata->tg_trigtuple, desc, "status");
	to = TupleText(newtup, desc, "status");
	if (to == NULL || strcmp(to, "confirmed") != 0 || (from && strcmp(from, "confirmed") == 0))
		return PointerGetDatum(newtup);
	for (int i = 0; i < 4; i++)
	{
		atts[i] = SPI_fnumber(desc, cols[i]);
		if (atts[i] <= 0 || !heap_attisnull(newtup, atts[i], desc))
			return PointerGetDatum(newtup);	/* a promise is kept as given */
	}

	memset(&o, 0, sizeof(o));
	o.order_id = DatumGetInt64(TupleBin(newtup, desc, "order_id", &isnull));
	o.warehouse_id = TupleText(newtup, desc, "warehouse_id");
	o.service_id = TupleText(newtup, desc, "service_id");
	o.country = TupleText(newtup, desc, "ship_to_country");
	o.postal = TupleText(newtup, desc, "ship_to_postal");
	o.placed_at = DatumGetTimestampTz(TupleBin(newtup, desc, "placed_at", &isnull));
	o.requested = DatumGetDateADT(TupleBin(newtup, desc, "requested_delivery", &isnull));
	o.has_requested = !isnull;

	OmEnsurePromiseData();
	OmBecomeOwner(RelationGetRelid(trigdata->tg_relation), &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	EstimateOrder(&o, &r);
	SPI_finish();
	OmRestoreUser(&saved);
	if (!r.known)
		return PointerGetDatum(newtup);
	values[0] = DateADTGetDatum(r.e.ship_earliest);
	values[1] = DateADTGetDatum(r.e.ship_latest);
	values[2] = DateADTGetDatum(r.e.delivery_earliest);
	values[3] = DateADTGetDatum(r.e.delivery_latest);
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 4, atts, values, nulls));
}

