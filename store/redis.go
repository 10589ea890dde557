package store

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// OpenRedis returns a client for the Redis at url. It does not dial: the
// first command does, so start-up does not wait for Redis.
func OpenRedis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return redis.NewClient(opt), nil
}
