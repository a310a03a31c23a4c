// The Baton C++ client: include this one header.
//
//   baton::Client   client.h     connection + session (keep-alive, loss)
//   baton::Lock     lock.h       LockGuard (RAII, fencing token)
//   baton::Semaphore semaphore.h SemaphoreGuard
//   baton::Event    event.h      Set / Clear / Wait / IsSet / Watch
//   baton::Condition condition.h Wait / Notify / NotifyAll
//   baton::Barrier  barrier.h
//   baton::Queue    queue.h      Put / Get / Ack / Nack / Join / Consume; consumer.h
//   baton::Future   future.h
//   baton::Tasks    tasks.h      Submit / Await / Cancel / Wait / Take; taken_task.h
//   baton::Timer    timer.h
//   baton::Admin    admin.h      List / Describe
//   Call, Stream, CancelToken, Awaitable: call.h, stream.h, cancel_token.h, awaitable.h
#pragma once

#include "baton/admin.h"
#include "baton/awaitable.h"
#include "baton/barrier.h"
#include "baton/call.h"
#include "baton/cancel_token.h"
#include "baton/client.h"
#include "baton/client_options.h"
#include "baton/condition.h"
#include "baton/consumer.h"
#include "baton/event.h"
#include "baton/future.h"
#include "baton/lock.h"
#include "baton/queue.h"
#include "baton/semaphore.h"
#include "baton/status.h"
#include "baton/stream.h"
#include "baton/taken_task.h"
#include "baton/tasks.h"
#include "baton/timer.h"
#include "baton/wait_options.h"
