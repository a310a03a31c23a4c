package baton_test

import (
	"testing"

	baton "github.com/baton/baton/clients/go"
)

// TestUnaryTransport runs the key tests again with WithTransport(Unary):
// one unary call per operation, the session kept alive by
// Sessions/KeepAliveStream, Queues/Consume for the consumer.
func TestUnaryTransport(t *testing.T) {
	transportOpts = []baton.Option{baton.WithTransport(baton.Unary)}
	t.Cleanup(func() { transportOpts = nil })
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"LockGrantsIncreasingFencingTokens", TestLockGrantsIncreasingFencingTokens},
		{"TryLockFailsWithWouldBlockWhileHeld", TestTryLockFailsWithWouldBlockWhileHeld},
		{"LockWaitsInLineAndIsHandedOff", TestLockWaitsInLineAndIsHandedOff},
		{"LockCtxDeadlineTimesOut", TestLockCtxDeadlineTimesOut},
		{"LeaseOnlyLockExpiresAndRefreshExtends", TestLeaseOnlyLockExpiresAndRefreshExtends},
		{"LockRequestIDReplaysTheHeldGrant", TestLockRequestIDReplaysTheHeldGrant},
		{"RequestIDRecoversGrant", TestRequestIDRecoversGrant},
		{"CancelledLocksRacingWithGrantsNeverLeak", TestCancelledLocksRacingWithGrantsNeverLeak},
		{"SessionCloseReleasesLockAndAbortsWaits", TestSessionCloseReleasesLockAndAbortsWaits},
		{"SemaphoreWeightedAcquireAndPartialRelease", TestSemaphoreWeightedAcquireAndPartialRelease},
		{"SemaphoreCancelledAcquiresNeverLeak", TestSemaphoreCancelledAcquiresNeverLeak},
		{"ConditionWaitNotify", TestConditionWaitNotify},
		{"ConditionWaitTimeoutReacquires", TestConditionWaitTimeoutReacquires},
		{"EventSetWakesWaitersAndClear", TestEventSetWakesWaitersAndClear},
		{"BarrierTimeoutBreaksItUntilReset", TestBarrierTimeoutBreaksItUntilReset},
		{"QueuePriorityOrderAckAndJoin", TestQueuePriorityOrderAckAndJoin},
		{"QueueTryGetTryPutAndNack", TestQueueTryGetTryPutAndNack},
		{"QueueConsumeStreamsWithPrefetch", TestQueueConsumeStreamsWithPrefetch},
		{"CancelledGetsNeverLoseItems", TestCancelledGetsNeverLoseItems},
		{"TaskSubmitTakeCompleteAwait", TestTaskSubmitTakeCompleteAwait},
		{"CancelledTakesNeverStrandTasks", TestCancelledTakesNeverStrandTasks},
		{"WorkLoopRunsHandlersAndStopsCancelledTasks", TestWorkLoopRunsHandlersAndStopsCancelledTasks},
		{"ClientReusesOneSessionAndReopensAfterLoss", TestClientReusesOneSessionAndReopensAfterLoss},
		{"SessionSurvivesAReconnectWithinTTL", TestSessionSurvivesAReconnectWithinTTL},
		{"SessionIsLostAfterAnOutageLongerThanTTL", TestSessionIsLostAfterAnOutageLongerThanTTL},
		{"LeaseOnlyLostSignal", TestLeaseOnlyLostSignal},
	} {
		t.Run(tc.name, tc.f)
	}
}
