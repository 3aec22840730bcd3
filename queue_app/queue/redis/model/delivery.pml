/*
 * The delivery protocol of queue_app/queue/redis/lua/ as a Promela model (README.md beside it
 * maps each step to its script and states the properties and bounds).
 *
 * Each Lua script runs atomically in Redis, so each is one `atomic` step here. Time is not
 * modelled: any delayed job may be due at any moment and any delivery in the group's pending
 * entries list (PEL) may be idle enough to be taken over, so a live but slow worker can lose its
 * job at any point. Safety therefore rests on the scripts alone (fencing tokens), not on timing.
 *
 * Bounds (override with -D): WORKERS, JOBS (1 or 2), MAX_ATTEMPTS, CRASHES, LOST_REPLIES, REQUEUES,
 * CANCELS.
 * Mutants that must fail (tests/unit/test_delivery_model.py): NO_FENCING, CANCEL_KEEPS_TOKEN,
 * RETRY_FORGETS_DELAY.
 */

#ifndef WORKERS
#define WORKERS 3
#endif
#ifndef JOBS
#define JOBS 1
#endif
#ifndef MAX_ATTEMPTS
#define MAX_ATTEMPTS 2
#endif
#ifndef CRASHES
#define CRASHES 1
#endif
#ifndef LOST_REPLIES
#define LOST_REPLIES 1
#endif
#ifndef REQUEUES
#define REQUEUES 1
#endif
#ifndef CANCELS
#define CANCELS 1  /* 0: the client never cancels (isolates the fencing mutant's violation) */
#endif

/* Stream entry ids 1..ENTRIES-1, never reused (Redis stream ids only grow); 0 means none. */
#define ENTRIES 8
#define MAXJOBS 2

/* Job status (the status hash's `status`; NONE: no hash yet). */
#define NONE 0
#define PENDING 1
#define PROCESSING 2
#define RETRYING 3
#define COMPLETED 4
#define FAILED 5
#define CANCELLED 6
#define TERMINAL(s) ((s) >= COMPLETED)

/* A stream entry: gone (XACK + XDEL), never read (XREADGROUP '>' returns it), or in the PEL. */
#define ABSENT 0
#define UNREAD 1
#define PEL 2

/* Outcomes a worker writes with finish.lua. */
#define O_COMPLETED 1
#define O_FAILED 2
#define O_RETRY 3
#define O_REQUEUE 4
#define O_DEFER 5

/* The token of a delivery: "<entry>/<attempts>" in Lua, entry * 16 + attempts here. */
#define TOKEN(e, a) ((e) * 16 + (a))
#define TOKEN_ATTEMPTS(t) ((t) % 16)

/* --- Redis: the job hashes, the delayed set, the stream and its group ----------------------- */
byte status[MAXJOBS];
byte attempts[MAXJOBS];
byte entry[MAXJOBS];        /* hash field `entry`: the job's current stream entry */
short token[MAXJOBS];       /* hash field `token`: the current delivery (0: none) */
short done_token[MAXJOBS];  /* hash field `done_token`: last token whose outcome was written */
bool delayed[MAXJOBS];      /* member of the delayed sorted set */
byte e_state[ENTRIES];
byte e_owner[ENTRIES];      /* consumer holding the entry in the PEL */
byte e_job[ENTRIES];        /* the entry's `job_id` field */
byte next_entry = 1;

/* --- Ghost state: what the properties talk about --------------------------------------------- */
byte completions[MAXJOBS];  /* times a `completed` outcome was applied */
bool cancelled[MAXJOBS];    /* cancel.lua answered 1 for the job */
bool cancel_acked;          /* ... and the client received that answer */

/* Scratch of one atomic step (never read in a later step): hidden, not part of the state. */
hidden byte e, i, result;
hidden byte got, lost, claimed, gone, ok;  /* booleans */

/* --- Fault budgets, shared by all processes ------------------------------------------------- */
byte crashes = CRASHES;
byte lost_replies = LOST_REPLIES;
byte requeues = REQUEUES;

#define UNREAD_ANY (e_state[1] == UNREAD || e_state[2] == UNREAD || e_state[3] == UNREAD \
  || e_state[4] == UNREAD || e_state[5] == UNREAD || e_state[6] == UNREAD || e_state[7] == UNREAD)
#define PEL_ANY (e_state[1] == PEL || e_state[2] == PEL || e_state[3] == PEL \
  || e_state[4] == PEL || e_state[5] == PEL || e_state[6] == PEL || e_state[7] == PEL)
#define OWNED_ANY (owned[1] || owned[2] || owned[3] || owned[4] || owned[5] || owned[6] \
  || owned[7])
#define DELAYED_ANY (delayed[0] || delayed[1])
#define DONE(j) ((j) >= JOBS || TERMINAL(status[j]))
#define ALL_DONE (DONE(0) && DONE(1))

/* No job lost: a job that is not finished can always be moved on by some script. */
#define RECOVERABLE(j) (status[j] == NONE || TERMINAL(status[j]) \
  || (status[j] == PENDING && (delayed[j] || (entry[j] != 0 && e_state[entry[j]] != ABSENT))) \
  || (status[j] == PROCESSING && entry[j] != 0 && e_state[entry[j]] == PEL) \
  || (status[j] == RETRYING && delayed[j]))
/* Completed once: at most one `completed` outcome applied, and a completed job stays so. */
#define COMPLETED_ONCE(j) (completions[j] == 0 || (completions[j] == 1 && status[j] == COMPLETED))
/* A cancelled job stays cancelled (nothing runs it again or writes its outcome). */
#define CANCEL_FINAL(j) (!cancelled[j] || status[j] == CANCELLED)

/* A reply the caller never receives (connection lost after the script ran). */
inline reply_lost(lost) {
  if
  :: lost_replies > 0 -> lost_replies--; lost = true
  :: true -> lost = false
  fi
}

/* lib.lua drop_entry: XACK + XDEL. */
inline drop_entry(e) {
  e_state[e] = ABSENT
}

/* lib.lua enter_stream: XADD a new entry for the job and record it in the hash. */
inline enter_stream(j) {
  assert(next_entry < ENTRIES);  /* a model bound, not a protocol property */
  e_job[next_entry] = j;
  e_state[next_entry] = UNREAD;
  entry[j] = next_entry;
  next_entry++
}

/* lib.lua finish (and dead_letter): a terminal status; HDEL token and entry. */
inline finish_job(j, s) {
  status[j] = s;
  token[j] = 0;
  entry[j] = 0
}

/* lib.lua promote_due, used by take.lua and promote.lua: each delayed job may or may not be due. */
inline promote_due(i) {
  i = 0;
  do
  :: i < JOBS && delayed[i] ->
     if
     :: delayed[i] = false;
        if
        :: status[i] == PENDING || status[i] == RETRYING -> status[i] = PENDING; enter_stream(i)
        :: else -> skip
        fi
     :: skip
     fi;
     i++
  :: i < JOBS && !delayed[i] -> i++
  :: i >= JOBS -> break
  od
}

/* lib.lua deliver (take.lua, start.lua): start the delivery of entry e, or drop it. */
inline deliver(e, j, got, tok) {
  j = e_job[e];
  got = false;
  if
  :: status[j] == PROCESSING && entry[j] == e -> skip  /* running under another consumer */
  :: !(status[j] == PROCESSING && entry[j] == e) && (status[j] != PENDING || entry[j] != e) ->
     drop_entry(e)  /* cancelled, finished, or an older entry of the job */
  :: status[j] == PENDING && entry[j] == e && attempts[j] >= MAX_ATTEMPTS ->
     drop_entry(e); finish_job(j, FAILED)  /* dead letter: delivered max_attempts times */
  :: status[j] == PENDING && entry[j] == e && attempts[j] < MAX_ATTEMPTS ->
     assert(!cancelled[j]);  /* a cancelled job never starts again */
     attempts[j]++;
     status[j] = PROCESSING;
     token[j] = TOKEN(e, attempts[j]);
     got = true;
     tok = token[j]
  fi
}

/* enqueue.lua: add the job unless its id is known; delayed or straight into the stream. */
inline enqueue(j) {
  if
  :: status[j] == NONE ->
     status[j] = PENDING;
     attempts[j] = 0;
     if
     :: delayed[j] = true
     :: enter_stream(j)
     fi
  :: else -> skip  /* a retried call after a lost reply: answers 0, changes nothing */
  fi
}

/* cancel.lua: a job not finished becomes CANCELLED; its entry is acked and deleted. */
inline cancel(j, ok) {
  if
  :: status[j] == NONE || TERMINAL(status[j]) -> ok = false
  :: else ->
     delayed[j] = false;
     if
     :: entry[j] != 0 -> drop_entry(entry[j])
     :: else -> skip
     fi;
     status[j] = CANCELLED;
     entry[j] = 0;
#ifndef CANCEL_KEEPS_TOKEN
     token[j] = 0;
#endif
     cancelled[j] = true;
     ok = true
  fi
}

/* finish.lua: write one outcome under token tok; result 1 written, 2 written before, 0 fenced. */
inline finish(j, tok, outcome, result) {
#ifdef NO_FENCING
  if
  :: true ->
#else
  if
  :: token[j] != tok -> result = (done_token[j] == tok -> 2 : 0)
  :: token[j] == tok ->
#endif
     if
     :: entry[j] != 0 -> drop_entry(entry[j])
     :: else -> skip
     fi;
     done_token[j] = tok;
     if
     :: outcome == O_COMPLETED ->
        finish_job(j, COMPLETED);
        completions[j]++;
        assert(completions[j] <= 1)
     :: outcome == O_FAILED -> finish_job(j, FAILED)
     :: outcome == O_RETRY ->
        status[j] = RETRYING; token[j] = 0; entry[j] = 0;
#ifndef RETRY_FORGETS_DELAY
        delayed[j] = true
#endif
     :: outcome == O_DEFER ->
        status[j] = PENDING; attempts[j]--; token[j] = 0; entry[j] = 0; delayed[j] = true
     :: outcome == O_REQUEUE ->
        status[j] = PENDING; token[j] = 0; enter_stream(j)
     fi;
     result = 1
  fi
}

/* claim.lua: XAUTOCLAIM entry e (idle: any PEL entry may be) for consumer w. */
inline claim(w, e, j, claimed) {
  e_owner[e] = w;
  j = e_job[e];
  claimed = false;
  if
  :: status[j] != NONE && entry[j] != e -> drop_entry(e)  /* a stale entry */
  :: status[j] == NONE || entry[j] == e ->
     if
     :: status[j] == PROCESSING ->  /* taken over: back to pending, the old token is void */
        status[j] = PENDING; token[j] = 0; claimed = true
     :: status[j] != NONE && status[j] != PENDING && status[j] != PROCESSING -> drop_entry(e)
     :: status[j] == NONE || status[j] == PENDING -> claimed = true
     fi
  fi
}

/* Forget the delivery once it is no longer held, so that equal states compare equal. */
inline settle() {
  if
  :: !have -> j = 0; tok = 0; outcome = 0; ended = false
  :: else -> skip
  fi
}

/* A worker process: one consumer running at most one job (max_concurrent = 1). */
proctype worker(byte w) {
  bool owned[ENTRIES];  /* entries read by a blocking XREADGROUP or claimed, not started yet */
  bool have;            /* a delivery in `running` (started, outcome not yet written) */
  bool ended;           /* its handler has returned; the outcome waits to be written */
  byte j, outcome;          /* the delivery's job and outcome (0 when none) */
  short tok;                 /* the delivery's token */
  byte read;                 /* the entry of a blocking read whose pipelined take is due */

  do
  :: ALL_DONE -> break

  /* take.lua: promote due jobs, XREADGROUP '>' COUNT 1, deliver. */
  :: atomic {
       !have && (UNREAD_ANY || DELAYED_ANY) ->
       promote_due(i);
       e = 1;
       do
       :: e < ENTRIES && e_state[e] != UNREAD -> e++
       :: e < ENTRIES && e_state[e] == UNREAD -> break
       :: e >= ENTRIES -> e = 0; break
       od;
       if
       :: e != 0 ->
          e_state[e] = PEL; e_owner[e] = w;
          deliver(e, j, got, tok);
          reply_lost(lost);
          have = got && !lost;
          settle()
       :: else -> skip
       fi
     }

  /* The blocking XREADGROUP of an idle worker: the entry becomes this consumer's, unstarted. */
  :: atomic {
       !have && UNREAD_ANY ->
       e = 1;
       do
       :: e_state[e] != UNREAD -> e++
       :: e_state[e] == UNREAD -> break
       od;
       e_state[e] = PEL; e_owner[e] = w;
       reply_lost(lost);
       owned[e] = !lost
     }

  /* consumer.py _read_and_take: the blocking XREADGROUP, then in the same pipeline take.lua with
     cursors, which Redis runs after the read returns (other clients may run in between): it
     starts this consumer's PEL entries newer than its cursor: the entry read (an entry it
     claimed meanwhile is owned, and the start step covers it). The two replies arrive (or are
     lost) together; an entry the read returned that the take did not start becomes owned. */
  :: atomic {
       !have && UNREAD_ANY ->
       e = 1;
       do
       :: e_state[e] != UNREAD -> e++
       :: e_state[e] == UNREAD -> break
       od;
       e_state[e] = PEL; e_owner[e] = w;
       read = e
     };
     atomic {
       got = false;
       if
       :: e_state[read] == PEL && e_owner[read] == w -> deliver(read, j, got, tok)
       :: else -> skip  /* taken over meanwhile: no longer in this consumer's PEL */
       fi;
       reply_lost(lost);
       have = got && !lost;
       owned[read] = !lost && !got;
       read = 0;
       settle()
     }

  /* start.lua: start an owned entry (read by the blocking read or claimed). */
  :: atomic {
       !have && OWNED_ANY ->
       e = 1;
       do
       :: !owned[e] -> e++
       :: owned[e] -> break
       od;
       owned[e] = false;
       deliver(e, j, got, tok);
       reply_lost(lost);
       have = got && !lost;
       settle()
     }

  /* claim.lua: take over one delivery of the PEL (any may be idle past claim_idle_ms). */
  :: atomic {
       !have && PEL_ANY ->
       e = 1;
       do
       :: e < ENTRIES && e_state[e] == PEL -> break
       :: e < ENTRIES -> e++
       :: e >= ENTRIES -> e = 0; break
       od;
       if
       :: e != 0 ->
          claim(w, e, j, claimed);
          reply_lost(lost);
          if
          :: claimed && !lost -> owned[e] = true
          :: else -> skip
          fi
       :: else -> skip
       fi
     }

  /* promote.lua (the maintenance loop). */
  :: atomic { DELAYED_ANY -> promote_due(i) }

  /* heartbeat.lua: keep the delivery (XCLAIM to this consumer) or learn it is lost. */
  :: atomic {
       have ->
       if
       :: token[j] == tok -> e_owner[entry[j]] = w; gone = false
       :: token[j] != tok && done_token[j] == tok -> gone = false  /* outcome written */
       :: token[j] != tok && done_token[j] != tok -> gone = true
       fi;
       /* A handler still running when its job was cancelled hears it at this heartbeat. */
       assert(!(cancelled[j] && !ended) || gone);
       reply_lost(lost);
       have = !(gone && !lost);  /* gone: the handler is cancelled, nothing is written */
       settle()
     }

  /* The handler returns: completed, failed, retry (attempts left), requeue or defer. */
  :: atomic {
       have && !ended ->
       ended = true;
       if
       :: outcome = O_COMPLETED
       :: outcome = O_FAILED
       :: TOKEN_ATTEMPTS(tok) < MAX_ATTEMPTS -> outcome = O_RETRY
       :: requeues > 0 -> requeues--; outcome = O_REQUEUE
       :: requeues > 0 -> requeues--; outcome = O_DEFER
       fi
     }

  /* finish.lua: write the outcome; after a lost reply the writer sends it again. */
  :: atomic {
       have && ended ->
       finish(j, tok, outcome, result);
       reply_lost(lost);
       have = lost;
       settle()
     }

  /* The worker dies and restarts: everything it held in memory is gone. */
  :: atomic {
       crashes > 0 ->
       crashes--;
       have = false;
       settle();
       for (i : 1 .. ENTRIES - 1) { owned[i] = false }
     }
  od
}

/* A client: enqueue each job (again after a lost reply), then maybe cancel job 0 (likewise). */
proctype client() {
  byte j;
  bool again;  /* the last call's reply was lost: call again */
  for (j : 0 .. JOBS - 1) {
    again = true;
    do
    :: again -> atomic { enqueue(j); reply_lost(lost); again = lost }
    :: else -> break
    od
  }
  if
  :: skip
  :: CANCELS ->
     again = true;
     do
     :: again ->
        atomic {
          cancel(0, ok);
          reply_lost(lost);
          again = lost;
          cancel_acked = cancel_acked || (ok && !lost)
        }
     :: else -> break
     od
  fi
}

/* Checks the invariants in every reachable state. */
active proctype monitor() {
end_watch:
  atomic {
    !(RECOVERABLE(0) && RECOVERABLE(1) && COMPLETED_ONCE(0) && COMPLETED_ONCE(1)
      && CANCEL_FINAL(0) && CANCEL_FINAL(1)) ->
    assert(RECOVERABLE(0) && RECOVERABLE(1));
    assert(COMPLETED_ONCE(0) && COMPLETED_ONCE(1));
    assert(CANCEL_FINAL(0) && CANCEL_FINAL(1))
  }
}

init {
  byte w;
  atomic {
    run client();
    for (w : 1 .. WORKERS) { run worker(w) }
  }
}
