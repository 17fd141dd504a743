package objstore

import "time"

// SetNotifyTiming sets the keep-alive interval S3 subscriptions ask for, and the pauses
// between attempts, for the subscriptions made until restore is called.
func SetNotifyTiming(ping, pauseMin, pauseMax time.Duration) (restore func()) {
	saved := [3]time.Duration{pingEvery, resubscribeMin, resubscribeMax}
	pingEvery, resubscribeMin, resubscribeMax = ping, pauseMin, pauseMax
	return func() { pingEvery, resubscribeMin, resubscribeMax = saved[0], saved[1], saved[2] }
}
