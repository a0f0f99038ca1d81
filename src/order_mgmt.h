/*
 * order_mgmt.h
 *		Declarations shared by the order_mgmt C files.
 */
#ifndef ORDER_MGMT_H
#define ORDER_MGMT_H

#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"

/* SQLSTATEs of class OM (the table is in README.md, "Errors") */
#define ERRCODE_OM_ILLEGAL_TRANSITION	MAKE_SQLSTATE('O','M','0','0','1')
#define ERRCODE_OM_REQUIREMENT_MISSING	MAKE_SQLSTATE('O','M','0','0','2')
#define ERRCODE_OM_APPEND_ONLY			MAKE_SQLSTATE('O','M','0','0','3')
#define ERRCODE_OM_NOT_FOUND			MAKE_SQLSTATE('O','M','0','0','4')
#define ERRCODE_OM_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('O','M','0','0','5')
#define ERRCODE_OM_ALREADY_SHIPPED		MAKE_SQLSTATE('O','M','0','0','6')
#define ERRCODE_OM_WRONG_STATUS			MAKE_SQLSTATE('O','M','0','1','0')
#define ERRCODE_OM_NOT_ENOUGH_STOCK		MAKE_SQLSTATE('O','M','0','1','4')
#define ERRCODE_OM_NO_WORKING_DAY		MAKE_SQLSTATE('O','M','0','2','0')
#define ERRCODE_OM_NO_SERVICE_MEETS		MAKE_SQLSTATE('O','M','0','2','1')
#define ERRCODE_OM_INCOMPLETE_SETUP		MAKE_SQLSTATE('O','M','0','2','2')
/* 0.5.0, fulfilment (docs/fulfilment.md): OM030 is raised in C, OM031/OM032 in SQL */
#define ERRCODE_OM_LINES_DISAGREE		MAKE_SQLSTATE('O','M','0','3','0')
/* 0.7.0, the event stream: OM040 (ack_events) is raised in SQL */
/* 0.9.0, Citus: a step that must run through the API on the coordinator */
#define ERRCODE_OM_CITUS_COORDINATOR	MAKE_SQLSTATE('O','M','0','6','0')

#define OM_SCHEMA "order_mgmt"
#define OM_CHANNEL "order_mgmt_events"	/* NOTIFY channel of the events */

/* order_mgmt.notify_mode */
typedef enum OmNotifyMode
{
	OM_NOTIFY_OFF,
	OM_NOTIFY_COMMIT,
	OM_NOTIFY_RELAY				/* relay.c: a background worker notifies */
} OmNotifyMode;

/* GUCs (order_mgmt.c) */
extern char *om_actor;
extern char *om_reason;
extern bool om_automated;
extern int	om_notify_mode;
extern char *om_db_role;

/* order_mgmt.c: run work as the owner of an extension table */
typedef struct OmSavedUser
{
	Oid			userid;
	int			sec_context;
	int			guc_level;		/* OmSpiBegin: the pinned search_path's level */
} OmSavedUser;

extern Oid	OmRelid(const char *relname);
extern void OmBecomeOwner(Oid relid, OmSavedUser *saved);
extern void OmRestoreUser(const OmSavedUser *saved);
extern void OmSpiBegin(Oid relid, OmSavedUser *saved);
extern void OmSpiEnd(const OmSavedUser *saved);
extern void OmRequireArgs(FunctionCallInfo fcinfo, const char *const *names, int n);
extern const char *OmCurrentActor(void);
extern const char *OmDbRole(void);
extern char *OmDateText(int32 day);
extern SPIPlanPtr OmKeepPlan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes);

/* cache.c: per-backend caches of tables (see the file header for the rules) */
#define OM_CACHE_TABLES 8

typedef struct OmCache
{
	const char *name;
	int			ntables;
	const char *tables[OM_CACHE_TABLES];	/* what it is built from; [0] owns it */
	Oid			relids[OM_CACHE_TABLES];
	bool		reference;		/* reference tables on Citus: read this node's placement */
	Oid			placements[OM_CACHE_TABLES];	/* (Citus) those placements */
	uint64		invalidations;	/* counted by the relcache callback */
	uint64		loaded_at;		/* invalidations when the version was read */
	void	   *data;			/* the published version */
	MemoryContext cxt;			/* its memory */
	bool		registered;
	/* a version read during a parallel query serves that query only */
	bool		query_only;
	LocalTransactionId query_lxid;
	CommandId	query_cid;
} OmCache;

extern void OmCacheInit(void);
extern bool OmCacheValid(OmCache *c);
extern void *OmCacheRebuild(OmCache *c, void *(*load) (MemoryContext cxt));
extern void OmLoadQuery(const char *sql);
extern const char *OmLoadRel(const char *table);
extern char *OmLoadText(uint64 r, int i);
extern Datum OmLoadDatum(uint64 r, int i, bool *isnull);

/* Hash keys of up to three strings of any length (cache.c). */
#define OM_KEY_PARTS 3
typedef struct OmKey
{
	const char *s[OM_KEY_PARTS];
} OmKey;

extern HTAB *OmKeyTable(const char *name, Size entrysize, long nelem);
extern void *OmKeyFind(HTAB *t, const char *a, const char *b, const char *c);
extern void *OmKeyEnter(HTAB *t, const char *a, const char *b, const char *c, bool *found);

/* One row for the events table; NULL pointers become SQL NULLs. */
typedef struct OmEvent
{
	int64		order_id;
	const char *entity;
	int64		entity_id;
	const char *event_type;
	const char *from_status;
	const char *to_status;
	const char *reason;			/* NULL: take order_mgmt.reason */
	Jsonb	   *payload;
} OmEvent;

/* events.c */
extern int64 EmitEvent(const OmEvent *ev);
extern void OmAppendNotifyPayload(StringInfo buf, const char *event_id, int64 seq,
								  int64 order_id, const char *event_type,
								  const char *from_status, const char *to_status);

/* stream.c: purge_events is the only way rows leave the event log */
struct TriggerData;
extern bool OmPurgeAllowsDelete(struct TriggerData *trigdata);

/* relay.c: notify_mode = relay (a background worker sends the NOTIFYs) */
extern void OmRelayInit(void);
extern bool OmCheckNotifyMode(int *newval, void **extra, GucSource source);
extern void OmRelayEventWritten(void);
extern void OmRelayWakeAtCommit(void);

/* citus.c: order_mgmt distributed by order_id on Citus (0.9.0) */
extern bool OmCitusActive(void);
extern bool OmOnCitusWorker(void);
extern Oid	OmCitusLocalPlacement(Oid relid);
extern void OmCitusRecordEffect(int64 order_id, const char *kind, Datum customer, Datum amount,
								Datum warehouse, Datum sku, const char *stock_kind,
								int32 on_hand_delta, int32 reserved_delta,
								Datum line_no, bool line_null, Datum reason, bool reason_null);
extern void OmCitusApplyArmedEffects(void);

/* lifecycle.c: the graphs and what each status means (statuses.class) */
extern const char *OmStatusClass(const char *entity, const char *status);
extern void OmCheckNothingDispatched(int64 order_id);

/* bi.c: helpers of the BI aggregates (bi.c, case_path.c, process_dfg.c) */
extern MemoryContext OmAggMemory(FunctionCallInfo fcinfo, const char *fn);
extern void OmBytesReader(StringInfo buf, bytea *b);

/* fulfilment.c: an order's shipping status agrees with its lines (0.5.0) */
extern void OmCheckLinesAgree(int64 order_id, const char *to);

#endif							/* ORDER_MGMT_H */
