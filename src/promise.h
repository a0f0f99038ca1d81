/*
 * promise.h
 *		The delivery promise engine: reference data cached per backend
 *		(reference.c), the estimate of one shipment start (promise.c) and of
 *		an order as it stands (order_promise.c).
 */
#ifndef OM_PROMISE_H
#define OM_PROMISE_H

#include "fmgr.h"
#include "pgtime.h"
#include "utils/date.h"
#include "utils/timestamp.h"

#include "order_mgmt.h"

typedef struct OmWarehouse
{
	char		id[OM_ID_LEN];
	char		tzname[OM_ID_LEN];
	pg_tz	   *tz;				/* NULL: PostgreSQL does not know tzname */
	TimeADT		cutoff;
	char		calendar_id[OM_ID_LEN];
	OmCalendar *cal;			/* NULL: no handling calendar */
	char		zone[OM_ID_LEN];	/* "" when none */
} OmWarehouse;

typedef struct OmService
{
	char		id[OM_ID_LEN];
	int			handling_min,
				handling_max,
				transit_min,
				transit_max;
	double		cost;
	bool		active;
	OmCalendar *transit_cal;
	OmCalendar *delivery_cal;
	OmCalendar *pickup_cal;		/* NULL: any handling day */
} OmService;

typedef struct OmLaneKey
{
	char		service[OM_ID_LEN];
	char		origin[OM_ID_LEN];
	char		dest[OM_ID_LEN];
} OmLaneKey;

typedef struct OmLane
{
	OmLaneKey	key;
	int			transit_min,
				transit_max;
	double		cost;
	bool		has_cost;
} OmLane;

/* One estimate; cost is that of the lane, else of the service. */
typedef struct OmEstimate
{
	DateADT		ship_earliest,
				ship_latest,
				delivery_earliest,
				delivery_latest;
	double		cost;
} OmEstimate;

typedef enum OmStrategy
{
	OM_CHEAPEST,
	OM_FASTEST
} OmStrategy;

/* reference.c: valid until the next OmEnsurePromiseData() */
extern void OmEnsurePromiseData(void);
extern OmWarehouse *OmFindWarehouse(const char *id);
extern OmService *OmFindService(const char *id);
extern OmService **OmServiceList(int *n);
extern OmLane *OmFindLane(const OmService *s, const OmWarehouse *w, const char *dest);
extern void OmNormalizeDestination(const char *country_in, int clen, const char *postal_in,
								   int plen, char *country, char *postal);
extern const char *OmDestZone(const char *country, const char *postal);
extern const char *OmWarehouseProblem(const OmWarehouse *w);
extern void OmCheckWarehouse(const OmWarehouse *w);

/* promise.c */
extern void OmEstimateCore(const OmWarehouse *w, const OmService *s, const char *dest,
						   TimestampTz start, OmEstimate *e);
extern bool OmBetter(const OmEstimate *a, const OmEstimate *b, OmStrategy strategy);
extern void OmRequireArg(FunctionCallInfo fcinfo, int i, const char *fname, const char *argname);
extern Datum OmEstimateDatum(FunctionCallInfo fcinfo, const OmEstimate *e, int natts,
							 Datum *extra, bool *extra_nulls, bool known);

#endif							/* OM_PROMISE_H */
