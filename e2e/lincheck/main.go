// Command lincheck checks a KeyVa client history for linearizability with porcupine.
//
// Input: a JSON-lines file, one operation per line:
//
//	{"client":3,"op":"put","key":"k","value":"v","call":123,"return":456,"status":"ok"}
//	{"client":1,"op":"get","key":"k","call":130,"return":170,"status":"ok","found":true,"output":"v"}
//	{"client":2,"op":"cas","key":"k","expected":"v","expectedAbsent":false,"value":"w","call":..,"return":..,"status":"ok","ok":false}
//	{"client":4,"op":"delete","key":"k","call":..,"return":null,"status":"unknown"}
//
// Times are nanoseconds on one monotonic clock. status "ok": the answer is known (a CAS that
// found another value is ok with "ok":false); "fail": the operation certainly had no effect
// (dropped); "unknown": it may or may not have taken effect (a timeout): it returns at
// infinity and its output is not checked. Reads of unknown outcome are dropped.
//
// Output: one JSON line {"result":"Ok"|"Illegal"|"Unknown","operations":N,"keys":K,...}.
// Exit code 0 = linearizable, 1 = not linearizable (an HTML visualisation is written with
// -viz), 2 = usage error or the check timed out.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

type record struct {
	Client         int     `json:"client"`
	Op             string  `json:"op"`
	Key            string  `json:"key"`
	Value          string  `json:"value"`
	Expected       string  `json:"expected"`
	ExpectedAbsent bool    `json:"expectedAbsent"`
	Call           int64   `json:"call"`
	Return         *int64  `json:"return"`
	Status         string  `json:"status"`
	Found          bool    `json:"found"`
	Output         string  `json:"output"`
	Ok             bool    `json:"ok"`
	Note           *string `json:"note,omitempty"`
}

type input struct {
	op             string
	key            string
	value          string
	expected       string
	expectedAbsent bool
}

type output struct {
	unknown bool
	found   bool
	value   string
	ok      bool
}

// state of one key: absent, or present with a value.
type state struct {
	present bool
	value   string
}

var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(input).key
			if _, seen := byKey[k]; !seen {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return state{} },
	Step: func(s interface{}, in interface{}, out interface{}) (bool, interface{}) {
		st := s.(state)
		i := in.(input)
		o := out.(output)
		switch i.op {
		case "get":
			if o.unknown {
				return true, st
			}
			return o.found == st.present && (!st.present || o.value == st.value), st
		case "put":
			return true, state{present: true, value: i.value}
		case "delete":
			return true, state{}
		case "cas":
			holds := (i.expectedAbsent && !st.present) || (!i.expectedAbsent && st.present && st.value == i.expected)
			next := st
			if holds {
				next = state{present: true, value: i.value}
			}
			if o.unknown {
				return true, next
			}
			return o.ok == holds, next
		}
		return false, st
	},
	Equal: func(a, b interface{}) bool { return a.(state) == b.(state) },
	DescribeOperation: func(in interface{}, out interface{}) string {
		i := in.(input)
		o := out.(output)
		res := "?"
		if !o.unknown {
			switch i.op {
			case "get":
				if o.found {
					res = fmt.Sprintf("%q", o.value)
				} else {
					res = "absent"
				}
			case "cas":
				res = fmt.Sprintf("%v", o.ok)
			default:
				res = "ok"
			}
		}
		switch i.op {
		case "get":
			return fmt.Sprintf("get(%q) -> %s", i.key, res)
		case "put":
			return fmt.Sprintf("put(%q, %q) -> %s", i.key, i.value, res)
		case "delete":
			return fmt.Sprintf("delete(%q) -> %s", i.key, res)
		default:
			exp := fmt.Sprintf("%q", i.expected)
			if i.expectedAbsent {
				exp = "absent"
			}
			return fmt.Sprintf("cas(%q, %s -> %q) -> %s", i.key, exp, i.value, res)
		}
	},
	DescribeState: func(s interface{}) string {
		st := s.(state)
		if !st.present {
			return "absent"
		}
		return fmt.Sprintf("%q", st.value)
	},
}

func load(path string) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []porcupine.Operation
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		switch r.Op {
		case "get", "put", "delete", "cas":
		default:
			return nil, fmt.Errorf("line %d: unknown op %q", line, r.Op)
		}
		in := input{op: r.Op, key: r.Key, value: r.Value, expected: r.Expected, expectedAbsent: r.ExpectedAbsent}
		switch r.Status {
		case "fail":
			continue // certainly no effect
		case "unknown":
			if r.Op == "get" {
				continue // a read with no answer constrains nothing
			}
			ops = append(ops, porcupine.Operation{ClientId: r.Client, Input: in, Call: r.Call, Output: output{unknown: true}, Return: math.MaxInt64})
		case "ok":
			if r.Return == nil {
				return nil, fmt.Errorf("line %d: status ok needs a return time", line)
			}
			if *r.Return < r.Call {
				return nil, fmt.Errorf("line %d: returns before its call", line)
			}
			ops = append(ops, porcupine.Operation{ClientId: r.Client, Input: in, Call: r.Call, Output: output{found: r.Found, value: r.Output, ok: r.Ok}, Return: *r.Return})
		default:
			return nil, fmt.Errorf("line %d: unknown status %q", line, r.Status)
		}
	}
	return ops, sc.Err()
}

func main() {
	viz := flag.String("viz", "", "write porcupine's HTML visualisation here when the history is not linearizable")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up (result Unknown) after this long")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: lincheck [-viz out.html] [-timeout 2m] history.jsonl")
		os.Exit(2)
	}
	ops, err := load(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lincheck:", err)
		os.Exit(2)
	}
	keys := map[string]bool{}
	for _, op := range ops {
		keys[op.Input.(input).key] = true
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, *timeout)
	verdict := map[string]interface{}{"result": string(res), "operations": len(ops), "keys": len(keys), "seconds": time.Since(start).Seconds()}
	if res == porcupine.Illegal && *viz != "" {
		if err := porcupine.VisualizePath(kvModel, info, *viz); err == nil {
			verdict["visualization"] = *viz
		}
	}
	b, _ := json.Marshal(verdict)
	fmt.Println(string(b))
	switch res {
	case porcupine.Ok:
		os.Exit(0)
	case porcupine.Illegal:
		os.Exit(1)
	default:
		os.Exit(2)
	}
}
