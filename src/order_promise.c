/*
 * order_promise.c
 *		The promise of orders and shipments as they stand: each open line
 *		starts from its warehouse at placed_at (or its ready_at), the order
 *		arrives with its latest line.  estimate_order_delivery, the triggers
 *		that store the promise on orders and shipments, and choose_service.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
#include "utils/rel.h"

#include "promise.h"

/* What the estimate of an order needs from its row. */
typedef struct OrderInfo
{
	int64		order_id;
	char	   *warehouse_id;	/* NULL when none */
	char	   *service_id;
	char	   *country;
	char	   *postal;
	TimestampTz placed_at;
	bool		has_requested;
	DateADT		requested;
} OrderInfo;

typedef struct OrderEstimate
{
	bool		known;
	OmEstimate	e;
	const char *service_id;
	const char *note;			/* why it is unknown */
} OrderEstimate;

/* The lines of an order as rows of order_lines (from SPI or from an array). */
typedef struct OrderLines
{
	HeapTuple  *tups;
	int			n;
	TupleDesc	desc;
} OrderLines;

static void LinesOfArray(ArrayType *arr, OrderLines *lines);
static void RequireColumns(HeapTuple tup, TupleDesc desc, const char *arg,
						   const char *const *cols, int n);
static Datum EstimateResult(FunctionCallInfo fcinfo, const OrderEstimate *r);

/* Run a kept plan taking one bigint (inside SPI). */
static void
RunById(SPIPlanPtr *slot, const char *sql, int64 id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		arg = Int64GetDatum(id);

	if (SPI_execute_plan(OmKeepPlan(slot, sql, 1, argtypes), &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", sql);
}

/* Text, binary value and null test of a named column of a tuple. */
static int
Att(TupleDesc desc, const char *col)
{
	int			att = SPI_fnumber(desc, col);

	if (att <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist", col)));
	return att;
}

static char *
ColText(HeapTuple tup, TupleDesc desc, const char *col)
{
	return SPI_getvalue(tup, desc, Att(desc, col));
}

static Datum
ColBin(HeapTuple tup, TupleDesc desc, const char *col, bool *isnull)
{
	return SPI_getbinval(tup, desc, Att(desc, col), isnull);
}

static bool
Unknown(OrderEstimate *r, const char *note)
{
	r->known = false;
	r->note = note;
	return false;
}

/* Why a line cannot start (no or a broken warehouse, no ready date), or NULL. */
static const char *
LineProblem(const char *line_no, const char *wid, OmWarehouse *w, bool waiting, bool ready_null)
{
	if (wid == NULL)
		return psprintf("line %s has no warehouse (nor has the order)", line_no);
	if (w == NULL)
		return psprintf("warehouse \"%s\" of line %s does not exist", wid, line_no);
	if (OmWarehouseProblem(w))
		return OmWarehouseProblem(w);
	if (waiting && ready_null)
		return psprintf("line %s is backordered and has no ready date", line_no);
	return NULL;
}

/*
 * Where and when one line starts: its warehouse (the order's when the line
 * names none) and placed_at, or its ready_at when later.  False when the
 * line is cancelled in full (*st untouched) or cannot start (the reason in
 * r, and r->known false).
 */
static bool
LineStart(OmRefData *ref, const OrderInfo *o, HeapTuple tup, TupleDesc desc, OmStart *st,
		  OrderEstimate *r)
{
	bool		isnull,
				ready_null;
	char	   *wid;
	Datum		ready;
	bool		waiting;
	const char *problem;

	if (DatumGetInt32(ColBin(tup, desc, "qty", &isnull)) <=
		DatumGetInt32(ColBin(tup, desc, "qty_cancelled", &isnull)))
		return false;
	wid = ColText(tup, desc, "warehouse_id");
	wid = wid ? wid : o->warehouse_id;
	ready = ColBin(tup, desc, "ready_at", &ready_null);
	waiting = DatumGetInt32(ColBin(tup, desc, "qty_backordered", &isnull)) > 0;
	st->w = wid ? OmFindWarehouse(ref, wid) : NULL;
	problem = LineProblem(ColText(tup, desc, "line_no"), wid, st->w, waiting, ready_null);
	if (problem)
		return Unknown(r, problem);
	st->start = o->placed_at;
	if (!ready_null && DatumGetTimestampTz(ready) > st->start)
		st->start = DatumGetTimestampTz(ready);
	return true;
}

/* The starts of the open lines (ordered by line_no); false when one cannot. */
static bool
LineStarts(OmRefData *ref, const OrderInfo *o, const OrderLines *lines, OmStart **starts,
		   int *n, OrderEstimate *r)
{
	*starts = palloc(sizeof(OmStart) * (lines->n + 1));
	*n = 0;
	for (int i = 0; i < lines->n; i++)
	{
		if (LineStart(ref, o, lines->tups[i], lines->desc, &(*starts)[*n], r))
			(*n)++;
		else if (!r->known)
			return false;
	}
	return true;
}

/* No open line: the order's own warehouse, from placed_at. */
static bool
OrderStart(OmRefData *ref, const OrderInfo *o, OmStart *st, OrderEstimate *r)
{
	st->w = o->warehouse_id ? OmFindWarehouse(ref, o->warehouse_id) : NULL;
	st->start = o->placed_at;
	if (st->w == NULL)
		return Unknown(r, "the order has no open line and no warehouse");
	if (OmWarehouseProblem(st->w))
		return Unknown(r, OmWarehouseProblem(st->w));
	return true;
}

/* The current estimate of an order from its lines. */
static void
EstimateOrder(const OrderInfo *o, const OrderLines *lines, OrderEstimate *r)
{
	OmRefData  *ref = OmRefDataGet();
	OmStart    *starts;
	int			n;
	const char *dest;
	OmService  *s;

	memset(r, 0, sizeof(*r));
	r->known = true;
	if (!LineStarts(ref, o, lines, &starts, &n, r))
		return;
	if (n == 0)
	{
		if (!OrderStart(ref, o, &starts[0], r))
			return;
		n = 1;
	}
	dest = OmDestination(ref, o->country, strlen(o->country), o->postal,
						 o->postal ? strlen(o->postal) : 0);
	if (o->service_id != NULL)
	{
		s = OmFindService(ref, o->service_id);
		if (s == NULL)
		{
			Unknown(r, psprintf("service \"%s\" does not exist", o->service_id));
			return;
		}
		OmEstimateStarts(ref, s, starts, n, dest, &r->e);
	}
	else if ((s = OmDefaultService(ref, starts, n, dest, o->has_requested, o->requested,
								   &r->e)) == NULL)
	{
		Unknown(r, "no active service exists");
		return;
	}
	r->service_id = OM_ID(s);
}

static void
ReadOrder(HeapTuple tup, TupleDesc desc, OrderInfo *o)
{
	bool		isnull;

	memset(o, 0, sizeof(*o));
	o->order_id = DatumGetInt64(ColBin(tup, desc, "order_id", &isnull));
	o->warehouse_id = ColText(tup, desc, "warehouse_id");
	o->service_id = ColText(tup, desc, "service_id");
	o->country = ColText(tup, desc, "ship_to_country");
	o->postal = ColText(tup, desc, "ship_to_postal");
	o->placed_at = DatumGetTimestampTz(ColBin(tup, desc, "placed_at", &isnull));
	o->requested = DatumGetDateADT(ColBin(tup, desc, "requested_delivery", &isnull));
	o->has_requested = !isnull;
}

/* Read an order as the owner of the tables (inside SPI); OM004 when absent. */
static void
FetchOrder(int64 order_id, OrderInfo *o)
{
	static SPIPlanPtr plan = NULL;

	RunById(&plan, "SELECT order_id, warehouse_id, service_id, ship_to_country, ship_to_postal,"
			" placed_at, requested_delivery FROM " OM_SCHEMA ".orders"
			" WHERE order_id OPERATOR(pg_catalog.=) $1", order_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("order %lld does not exist", (long long) order_id)));
	ReadOrder(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, o);
}

/* Read the lines of an order as the owner (inside SPI). */
static void
FetchLines(int64 order_id, OrderLines *lines)
{
	static SPIPlanPtr plan = NULL;

	RunById(&plan, "SELECT line_no, warehouse_id, ready_at, qty_backordered, qty, qty_cancelled"
			" FROM " OM_SCHEMA ".order_lines WHERE order_id OPERATOR(pg_catalog.=) $1"
			" ORDER BY line_no", order_id);
	lines->tups = SPI_tuptable->vals;
	lines->n = (int) SPI_processed;
	lines->desc = SPI_tuptable->tupdesc;
}

static void
ConnectAsOwner(OmSavedUser *saved)
{
	OmSpiBegin(OmRelid("orders"), saved);
}

static void
Disconnect(const OmSavedUser *saved)
{
	OmSpiEnd(saved);
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
	static const char *const names[] = {"order_id"};
	OmSavedUser saved;
	OrderInfo	o;
	OrderLines	lines;
	OrderEstimate r;

	MemoryContext caller = CurrentMemoryContext;

	OmRequireArgs(fcinfo, names, 1);
	ConnectAsOwner(&saved);
	FetchOrder(PG_GETARG_INT64(0), &o);
	FetchLines(o.order_id, &lines);
	EstimateOrder(&o, &lines, &r);
	if (r.note)
		r.note = MemoryContextStrdup(caller, r.note);	/* SPI's memory goes next */
	Disconnect(&saved);
	return EstimateResult(fcinfo, &r);
}

/*
 * estimate_order_window(o orders, lines order_lines[]) -> the same record
 * as estimate_order_delivery, from rows the caller passes: it reads no order
 * (only reference data), so views can show estimates to roles that may not
 * read orders as the owner (order_mgmt_reader).  lines: the order's lines,
 * ordered by line_no.
 */
PG_FUNCTION_INFO_V1(estimate_order_window);
Datum
estimate_order_window(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"o", "lines"};
	/* what the orders table guarantees, a row built by the caller may lack */
	static const char *const order_required[] = {"order_id", "ship_to_country", "placed_at"};
	HeapTupleHeader th;
	HeapTupleData order;
	TupleDesc	odesc;
	OrderInfo	o;
	OrderLines	lines;
	OrderEstimate r;

	OmRequireArgs(fcinfo, names, 2);
	th = PG_GETARG_HEAPTUPLEHEADER(0);
	odesc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th), HeapTupleHeaderGetTypMod(th));
	order.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&order.t_self);
	order.t_tableOid = InvalidOid;
	order.t_data = th;
	RequireColumns(&order, odesc, "o", order_required, lengthof(order_required));
	ReadOrder(&order, odesc, &o);
	ReleaseTupleDesc(odesc);
	LinesOfArray(PG_GETARG_ARRAYTYPE_P(1), &lines);
	EstimateOrder(&o, &lines, &r);
	ReleaseTupleDesc(lines.desc);
	return EstimateResult(fcinfo, &r);
}

/* 22004 unless the named columns of a row passed as argument arg are set. */
static void
RequireColumns(HeapTuple tup, TupleDesc desc, const char *arg, const char *const *cols, int n)
{
	for (int i = 0; i < n; i++)
		if (heap_attisnull(tup, Att(desc, cols[i]), desc))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s.%s must not be null", arg, cols[i])));
}

/* The rows of an order_lines[] (null elements are refused). */
static void
LinesOfArray(ArrayType *arr, OrderLines *lines)
{
	static const char *const line_required[] = {"line_no", "qty", "qty_cancelled",
	"qty_backordered"};
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign, &elems, &nulls, &n);
	lines->tups = palloc(sizeof(HeapTuple) * (n + 1));
	lines->n = n;
	lines->desc = lookup_rowtype_tupdesc(ARR_ELEMTYPE(arr), -1);
	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader th;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("lines must not contain nulls")));
		th = DatumGetHeapTupleHeader(elems[i]);
		lines->tups[i] = palloc0(sizeof(HeapTupleData));
		lines->tups[i]->t_len = HeapTupleHeaderGetDatumLength(th);
		ItemPointerSetInvalid(&lines->tups[i]->t_self);
		lines->tups[i]->t_data = th;
		RequireColumns(lines->tups[i], lines->desc, "lines[]", line_required,
					   lengthof(line_required));
	}
}

/* The record of estimate_order_delivery and estimate_order_window. */
static Datum
EstimateResult(FunctionCallInfo fcinfo, const OrderEstimate *r)
{
	Datum		extra[3];
	bool		extra_nulls[3];

	extra[0] = BoolGetDatum(r->known);
	extra[1] = r->known ? CStringGetTextDatum(r->service_id) : (Datum) 0;
	extra[2] = r->known ? (Datum) 0 : CStringGetTextDatum(r->note);
	extra_nulls[0] = false;
	extra_nulls[1] = !r->known;
	extra_nulls[2] = r->known;
	return OmEstimateDatum(fcinfo, &r->e, 7, extra, extra_nulls, r->known);
}

static void
CheckRowTrigger(FunctionCallInfo fcinfo, const char *name, bool insert)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		(insert ? !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) :
		 !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		elog(ERROR, "%s must be fired BEFORE %s FOR EACH ROW", name, insert ? "INSERT" : "UPDATE");
}

/* Are the named date columns of tup all null? */
static bool
AllNull(HeapTuple tup, TupleDesc desc, const char *const *cols, int n, int *atts)
{
	for (int i = 0; i < n; i++)
	{
		atts[i] = Att(desc, cols[i]);
		if (!heap_attisnull(tup, atts[i], desc))
			return false;
	}
	return true;
}

/* Set the date columns atts of tup to the four dates of e (or the last two). */
static HeapTuple
SetDates(HeapTuple tup, TupleDesc desc, int *atts, int n, const OmEstimate *e)
{
	DateADT		dates[4] = {e->ship_earliest, e->ship_latest, e->delivery_earliest,
	e->delivery_latest};
	Datum		values[4];
	bool		nulls[4] = {0};

	for (int i = 0; i < n; i++)
		values[i] = DateADTGetDatum(dates[4 - n + i]);
	return heap_modify_tuple_by_cols(tup, desc, n, atts, values, nulls);
}

/* Does the order enter the open class (confirmed, processing) now? */
static bool
BecomesOpen(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	char	   *from = ColText(oldtup, desc, "status");
	char	   *to = ColText(newtup, desc, "status");
	const char *to_class = to ? OmStatusClass("order", to) : NULL;
	const char *from_class = from ? OmStatusClass("order", from) : NULL;

	if (to_class == NULL || strcmp(to_class, "open") != 0)
		return false;
	return from_class == NULL || strcmp(from_class, "open") != 0;
}

/*
 * promise_trigger: BEFORE UPDATE OF status FOR EACH ROW on orders, after the
 * lifecycle trigger.  When the order enters the open class (is confirmed)
 * and has no promise yet, its current estimate becomes the promise
 * (nothing when the estimate is unknown).
 */
PG_FUNCTION_INFO_V1(promise_trigger);
Datum
promise_trigger(PG_FUNCTION_ARGS)
{
	static const char *const cols[4] = {"promised_ship_earliest", "promised_ship_latest",
	"promised_delivery_earliest", "promised_delivery_latest"};
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	int			atts[4];
	OrderInfo	o;
	OrderLines	lines;
	OrderEstimate r;
	OmSavedUser saved;

	CheckRowTrigger(fcinfo, "promise_trigger", false);
	desc = RelationGetDescr(trigdata->tg_relation);
	newtup = trigdata->tg_newtuple;
	if (!BecomesOpen(trigdata->tg_trigtuple, newtup, desc) || !AllNull(newtup, desc, cols, 4, atts))
		return PointerGetDatum(newtup); /* a promise is kept as given */
	ReadOrder(newtup, desc, &o);
	ConnectAsOwner(&saved);
	FetchLines(o.order_id, &lines);
	EstimateOrder(&o, &lines, &r);
	Disconnect(&saved);
	if (!r.known)
		return PointerGetDatum(newtup);
	return PointerGetDatum(SetDates(newtup, desc, atts, 4, &r.e));
}

/*
 * shipment_promise_trigger: BEFORE INSERT FOR EACH ROW on shipments.  A new
 * shipment takes the order's promised delivery window (unless given) and
 * its own estimate (unless given): from its warehouse, starting at the later
 * of placed_at and its created_at, with its service, else the order's, else
 * the default service for its promise.  Nothing is filled when the estimate
 * cannot be made (no warehouse calendar, unknown service).
 */
PG_FUNCTION_INFO_V1(shipment_promise_trigger);
Datum
shipment_promise_trigger(PG_FUNCTION_ARGS)
{
	static const char *const promised[2] = {"promised_delivery_earliest", "promised_delivery_latest"};
	static const char *const estimated[2] = {"estimated_delivery_earliest",
	"estimated_delivery_latest"};
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tup;
	int			patts[2],
				eatts[2];
	bool		isnull;
	OmSavedUser saved;
	HeapTuple	order;
	TupleDesc	odesc;
	OrderInfo	o;
	OmRefData  *ref;
	OmStart		st;
	OmService  *s;
	char	   *svc;
	OmEstimate	e;

	CheckRowTrigger(fcinfo, "shipment_promise_trigger", true);
	desc = RelationGetDescr(trigdata->tg_relation);
	tup = trigdata->tg_trigtuple;
	ConnectAsOwner(&saved);
	{
		static SPIPlanPtr plan = NULL;

		RunById(&plan, "SELECT order_id, warehouse_id, service_id, ship_to_country,"
				" ship_to_postal, placed_at, requested_delivery, promised_delivery_earliest,"
				" promised_delivery_latest FROM " OM_SCHEMA ".orders"
				" WHERE order_id OPERATOR(pg_catalog.=) $1",
				DatumGetInt64(ColBin(tup, desc, "order_id", &isnull)));
	}
	if (SPI_processed == 0)
	{
		Disconnect(&saved);
		return PointerGetDatum(tup);	/* the foreign key reports it */
	}
	order = SPI_tuptable->vals[0];
	odesc = SPI_tuptable->tupdesc;
	ReadOrder(order, odesc, &o);
	if (AllNull(tup, desc, promised, 2, patts))
	{
		Datum		values[2];
		bool		nulls[2];

		values[0] = ColBin(order, odesc, "promised_delivery_earliest", &nulls[0]);
		values[1] = ColBin(order, odesc, "promised_delivery_latest", &nulls[1]);
		tup = heap_modify_tuple_by_cols(tup, desc, 2, patts, values, nulls);
	}
	ref = OmRefDataGet();
	st.w = OmFindWarehouse(ref, ColText(tup, desc, "warehouse_id"));
	st.start = Max(o.placed_at, DatumGetTimestampTz(ColBin(tup, desc, "created_at", &isnull)));
	svc = ColText(tup, desc, "service_id");
	svc = svc ? svc : o.service_id;
	if (AllNull(tup, desc, estimated, 2, eatts) && st.w != NULL && !OmWarehouseProblem(st.w))
	{
		const char *dest = OmDestination(ref, o.country, strlen(o.country), o.postal,
										 o.postal ? strlen(o.postal) : 0);
		Datum		deadline = ColBin(tup, desc, "promised_delivery_latest", &isnull);

		s = svc ? OmFindService(ref, svc) :
			OmDefaultService(ref, &st, 1, dest, !isnull, DatumGetDateADT(deadline), &e);
		if (s != NULL)
		{
			OmEstimateStarts(ref, s, &st, 1, dest, &e);
			tup = SetDates(tup, desc, eatts, 2, &e);
		}
	}
	if (tup != trigdata->tg_trigtuple)
		tup = SPI_copytuple(tup);	/* into the caller's memory: SPI's goes next */
	Disconnect(&saved);
	return PointerGetDatum(tup);
}

/*
 * choose_service(shipment_id, strategy, as_of) -> service_id: the best
 * service (cheapest or fastest) whose latest delivery meets the shipment's
 * promise (else the order's; no deadline when neither is set), handling
 * from as_of (default now, never before placed_at).  OM021 when none can.
 */
PG_FUNCTION_INFO_V1(choose_service);
Datum
choose_service(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"shipment_id", "strategy"};
	static SPIPlanPtr plan = NULL;
	OmSavedUser saved;
	OmStrategy	strategy;
	OmRefData  *ref;
	HeapTuple	row;
	TupleDesc	desc;
	OrderInfo	o;
	OmStart		st;
	OmService  *s;
	OmEstimate	e;
	bool		no_deadline;
	Datum		deadline;
	int64		shipment_id;
	const char *dest;

	OmRequireArgs(fcinfo, names, 2);
	shipment_id = PG_GETARG_INT64(0);
	strategy = OmStrategyArg(PG_GETARG_TEXT_PP(1));
	ConnectAsOwner(&saved);
	RunById(&plan, "SELECT o.order_id, sh.warehouse_id AS shipment_warehouse, o.warehouse_id,"
			" o.service_id, o.ship_to_country, o.ship_to_postal, o.placed_at,"
			" o.requested_delivery, coalesce(sh.promised_delivery_latest,"
			" o.promised_delivery_latest) AS deliver_by FROM " OM_SCHEMA ".shipments sh JOIN "
			OM_SCHEMA ".orders o USING (order_id) WHERE sh.shipment_id OPERATOR(pg_catalog.=) $1",
			shipment_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_FOUND),
				 errmsg("shipment %lld does not exist", (long long) shipment_id)));
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	ReadOrder(row, desc, &o);
	ref = OmRefDataGet();
	st.w = OmWarehouseArg(ref, cstring_to_text(ColText(row, desc, "shipment_warehouse")));
	st.start = PG_ARGISNULL(2) ? GetCurrentTransactionStartTimestamp() : PG_GETARG_TIMESTAMPTZ(2);
	st.start = Max(st.start, o.placed_at);
	deadline = ColBin(row, desc, "deliver_by", &no_deadline);
	dest = OmDestination(ref, o.country, strlen(o.country), o.postal,
						 o.postal ? strlen(o.postal) : 0);
	s = OmBestService(ref, &st, 1, dest, !no_deadline, DatumGetDateADT(deadline), strategy, &e);
	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NO_SERVICE_MEETS),
				 errmsg("no service can deliver shipment %lld by %s", (long long) shipment_id,
						no_deadline ? "any date" : OmDateText(DatumGetDateADT(deadline))),
				 errdetail("Warehouse \"%s\", destination %s %s, handling from %s.", OM_ID(st.w),
						   o.country, o.postal ? o.postal : "",
						   timestamptz_to_str(st.start)),
				 errhint("Add a faster service or lane, or renegotiate the promise.")));
	Disconnect(&saved);
	PG_RETURN_TEXT_P(cstring_to_text(OM_ID(s)));
}
