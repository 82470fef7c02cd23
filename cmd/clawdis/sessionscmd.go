package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/schemas"
)

// newSessionsCmd is `clawdis gateway sessions`: the sessions.list method as a table (or
// its payload with --json).
func newSessionsCmd(cf *clientFlags, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List the conversations, most recently updated first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p schemas.SessionsListParams
			if cmd.Flags().Changed("limit") {
				p.Limit = &limit
			}
			raw, err := callGateway(cmd.Context(), cf, schemas.MethodSessionsList, p)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, raw)
			}
			var res schemas.SessionsListResult
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("sessions.list: unexpected payload: %w", err)
			}
			return writeSessions(stdout, res.Sessions, time.Now())
		},
	}
	f := cmd.Flags()
	f.IntVar(&limit, "limit", 50, "how many sessions to list (1–500)")
	f.BoolVar(&asJSON, "json", false, "print the payload as JSON")
	return cmd
}

// writeSessions prints sessions as a table: key, age of the last update, message count and
// the last message's preview ("-" where unknown).
func writeSessions(w io.Writer, rows []schemas.SessionRow, now time.Time) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no sessions yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tUPDATED\tMESSAGES\tPREVIEW")
	for _, r := range rows {
		updated := "-"
		if r.UpdatedAt > 0 {
			updated = humanMs(max(now.UnixMilli()-r.UpdatedAt, 0)) + " ago"
		}
		count := "-"
		if r.MessageCount != nil {
			count = strconv.Itoa(*r.MessageCount)
		}
		preview := r.LastMessagePreview
		if preview == "" {
			preview = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Key, updated, count, preview)
	}
	return tw.Flush()
}
