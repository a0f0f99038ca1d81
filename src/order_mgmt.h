/*
 * order_mgmt.h
 *		Declarations shared by the order_mgmt C files.
 */
#ifndef ORDER_MGMT_H
#define ORDER_MGMT_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"

/* SQLSTATEs of class OM (listed in README.md) */
#define ERRCODE_OM_ILLEGAL_TRANSITION	MAKE_SQLSTATE('O','M','0','0','1')
#define ERRCODE_OM_REQUIREMENT_MISSING	MAKE_SQLSTATE('O','M','0','0','2')
#define ERRCODE_OM_APPEND_ONLY			MAKE_SQLSTATE('O','M','0','0','3')
#define ERRCODE_OM_NOT_FOUND			MAKE_SQLSTATE('O','M','0','0','4')
#define ERRCODE_OM_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('O','M','0','0','5')
#define ERRCODE_OM_ALREADY_SHIPPED		MAKE_SQLSTATE('O','M','0','0','6')
/* delivery promise (issue 4): OM020 upwards */
#define ERRCODE_OM_NO_WORKING_DAY		MAKE_SQLSTATE('O','M','0','2','0')
#define ERRCODE_OM_NO_SERVICE_MEETS		MAKE_SQLSTATE('O','M','0','2','1')
#define ERRCODE_OM_INCOMPLETE_SETUP		MAKE_SQLSTATE('O','M','0','2','2')
/* event stream (issue 12): OM030 upwards */
#define ERRCODE_OM_NOT_DELIVERABLE		MAKE_SQLSTATE('O','M','0','3','0')

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

/* order_mgmt.c: run catalog work as the owner of an extension table */
typedef struct OmSavedUser
{
	Oid			userid;
	int			sec_context;
} OmSavedUser;

/* A per-backend cache: its memory and its relcache callback (order_mgmt.c) */
typedef struct OmCache
{
	const char *name;
	RelcacheCallbackFunction callback;
	MemoryContext cxt;
	bool		registered;
} OmCache;

extern MemoryContext OmCacheReset(OmCache *cache);
extern Oid	OmRelid(const char *relname);
extern void OmBecomeOwner(Oid relid, OmSavedUser *saved);
extern void OmRestoreUser(const OmSavedUser *saved);

/* calendar.c: business calendars, cached per backend */
#define OM_ID_LEN 64			/* ids of reference data are shorter (CHECKs) */
#define OM_SCAN_LIMIT 3660		/* days scanned at most for one working day */

typedef struct OmCalendar
{
	char		id[OM_ID_LEN];	/* hash key */
	uint8		workmask;		/* bit (ISO weekday - 1) set: working */
	bool		any_working;	/* some weekday or exception works */
	int			nexc;			/* exceptions, sorted by day */
	DateADT    *exc_day;
	bool	   *exc_working;
} OmCalendar;

extern uint64 OmCalendarGeneration(void);
extern OmCalendar *OmFindCalendar(const char *id);
extern OmCalendar *OmLookupCalendar(const char *id);
extern bool OmIsBusinessDay(const OmCalendar *cal, DateADT day);
extern DateADT OmRollForward(const OmCalendar *cal, DateADT day);
extern DateADT OmAddBusinessDays(const OmCalendar *cal, DateADT day, int n);
extern bool OmTextToId(text *t, char *buf);

#endif							/* ORDER_MGMT_H */
