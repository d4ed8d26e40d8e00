// Package stop finds a request's stop strings in generated text as it streams. Text
// that might be the start of a stop string is held back until the next piece shows
// whether it is one, so a client never sees part of a stop string. The stop string
// itself is not emitted (vLLM's default include_stop_str_in_output=false).
package stop
