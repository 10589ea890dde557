package telegramtest

import "time"

// limiter enforces Telegram's flood limits with sliding windows: at most
// global sends in any rolling second, perChat to one private chat in any
// rolling second, and perGroup to one group in any rolling minute. Only
// accepted sends occupy a window.
type limiter struct {
	global, perChat, perGroup int
	second                    time.Duration
	all                       []time.Time
	chats                     map[int64][]time.Time
}

// allow records a send to chatID at now, or refuses it with the number of
// (scaled) seconds to wait.
func (l *limiter) allow(now time.Time, chatID int64, group bool) (retryAfter int, ok bool) {
	var wait time.Duration
	check := func(times []time.Time, limit int, span time.Duration) []time.Time {
		cutoff := now.Add(-span)
		i := 0
		for i < len(times) && !times[i].After(cutoff) {
			i++
		}
		times = times[i:]
		if limit > 0 && len(times) >= limit {
			if w := times[len(times)-limit].Add(span).Sub(now); w > wait {
				wait = w
			}
		}
		return times
	}
	l.all = check(l.all, l.global, l.second)
	limit, span := l.perChat, l.second
	if group {
		limit, span = l.perGroup, 60*l.second
	}
	l.chats[chatID] = check(l.chats[chatID], limit, span)
	if wait > 0 {
		return max(int((wait+l.second-1)/l.second), 1), false
	}
	if l.global > 0 {
		l.all = append(l.all, now)
	}
	if limit > 0 {
		l.chats[chatID] = append(l.chats[chatID], now)
	}
	return 0, true
}
