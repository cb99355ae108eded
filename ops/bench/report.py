"""The human-readable table of a `scimflow bench` summary (`--json` prints the summary)."""

from __future__ import annotations

import json
from typing import Any


def report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    lines = [f"machine            {summary['machine']}", f"plan               {summary['plan']}"]
    if "ack" in summary:
        lines += _ack(summary["ack"])
    if "sync_requests" in summary:
        lines += _sync(summary)
    if "metrics" in summary:
        lines += _metrics(summary["metrics"])
    if "console" in summary:
        lines += _console(summary["console"])
    if "existence" in summary:
        lines += _existence(summary["existence"])
    if "sessions" in summary:
        lines += _sessions(summary["sessions"], summary["baselines"])
    lines += _baselines(summary["baselines"])
    lines += [f"load generator     {summary['load_generator']}",
              f"correctness        {summary['correctness']}"]
    print("\n".join(lines))


def _ack(ack: dict[str, Any]) -> list[str]:
    return [
        f"acknowledged       {ack['post_per_s']} POST /Users per s, p50 {ack['p50_ms']} ms, "
        f"p99 {ack['p99_ms']} ms ({ack['requests']} POST only, {ack['throttled_429_503']} "
        f"throttled, {ack['server_errors_5xx']} 5xx, peak "
        f"{ack['peak_postgres_connections']} connections)"]


def _sync(summary: dict[str, Any]) -> list[str]:
    sync, apply_, deprovision = summary["sync_requests"], summary["apply"], summary["deprovision"]
    gets = sync["existence_get"]
    lines = [
        f"sync requests      {sync['post_per_s']} POST /Users per s with existence GETs, p50 "
        f"{sync['p50_ms']} ms, p99 {sync['p99_ms']} ms ({sync['requests']} requests, "
        f"{sync['throttled_429_503']} throttled, {sync['server_errors_5xx']} 5xx)",
        f"sync existence     {gets['per_s']} GET per s, p50 {gets['p50_ms']} ms, "
        f"p99 {gets['p99_ms']} ms ({gets['requests']} GETs)",
    ]
    lines += [f"  {kind:<22} {f['requests']} requests, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms"
              for kind, f in sync["by_kind"].items()]
    lines += [
        f"converged in       {summary['converge_seconds']} s",
        f"applied            {apply_['users_per_s']} users/s ({apply_['users']} users)",
        f"deprovision        p50 {deprovision['p50_s']} s, p99 {deprovision['p99_s']} s "
        f"({deprovision['count']}; PATCH acknowledged -> applied)",
        *_deprovision_webhook(summary.get("webhooks")),
        f"postgres conns     peak {summary['postgres_connections']['peak']} "
        f"(budget {summary['postgres_connections']['budget']})",
    ]
    return lines + _webhooks(summary.get("webhooks")) + _rss(summary["rss"]) + _cpu(summary["cpu"])


def _metrics(metrics: dict[str, Any]) -> list[str]:
    if "error" in metrics:
        return [f"/metrics           {metrics['error']}"]
    api, workers, bench = metrics["api"], metrics["workers"], metrics["bench"]
    return [
        f"/metrics           {'agree' if metrics['agrees'] else 'DISAGREE'} with the bench: "
        f"{api['scim_requests']} requests (bench {bench['scim_requests']}), "
        f"{api['throttled_429']} 429s (bench {bench['throttled_429']}), "
        f"{workers['user_creates_applied']} users applied (bench "
        f"{bench['user_creates_applied']}), {workers['commands_applied']} commands applied, "
        f"{workers['dead_letters']} dead letters"]


def _console(console: dict[str, Any]) -> list[str]:
    return [f"console page        {console['pages']} loads by {console['operators']} operators "
            f"during the sync: p50 {console['p50_ms']} ms, p99 {console['p99_ms']} ms, "
            f"max {console['max_ms']} ms, statuses {console['statuses']}"]


def _deprovision_webhook(webhooks: dict[str, Any] | None) -> list[str]:
    if webhooks is None:
        return []
    latency = webhooks["deprovision_to_webhook"]
    after = webhooks["deprovision_applied_to_webhook"]
    return [f"  by webhook       p50 {latency['p50_s']} s, p99 {latency['p99_s']} s, max "
            f"{latency['max_s']} s ({latency['count']} of {latency['deactivations']}; PATCH "
            "acknowledged -> user.deprovisioned at the receiver)",
            f"    of which       p50 {after['p50_s']} s, p99 {after['p99_s']} s, max "
            f"{after['max_s']} s after the apply (journal applied_at -> arrival)"]


def _webhooks(webhooks: dict[str, Any] | None) -> list[str]:
    if webhooks is None:
        return ["webhooks           off (--no-webhooks)"]
    delivery, capacity = webhooks["delivery"], webhooks["receiver_capacity"]
    return [
        f"webhooks           {delivery['per_s']} events/s delivered ({delivery['events']} events "
        f"in {delivery['seconds']} s, first to last arrival; {delivery['repeats']} repeats, "
        f"{delivery['bad_signatures']} bad signatures)",
        f"  every event      {delivery['all_arrived']} ({delivery['outbox_events']} in the "
        f"outbox, {delivery['missing']} missing); last arrival "
        f"{delivery['lag_after_last_apply_s']} s after the last apply",
        f"  outbox written   {delivery['outbox_written_per_s']} events/s (first to last event "
        "written: delivery during the sync can go no faster)",
        *_catch_up(webhooks.get("catch_up_during_sync")),
        *_replay(webhooks.get("backlog_replay")),
        f"  receiver         {capacity['per_s']} POST/s alone (one http.client thread, "
        f"{capacity['event_bytes']}-byte event) -> delivery at "
        f"{webhooks['throughput_vs_receiver_capacity']}x",
        f"  knobs            {webhooks['knobs']}",
    ]


def _catch_up(catch_up: dict[str, Any] | None) -> list[str]:
    if catch_up is None:
        return []
    lines = [f"  during the sync  {catch_up['per_s']} events/s ({catch_up['events']} events in "
             f"{catch_up['seconds']} s: a second endpoint enabled at "
             f"{catch_up['users_applied_at_enable']} users applied "
             f"({catch_up['users_acknowledged_at_enable']} acknowledged), catching up on the "
             f"{catch_up['backlog_events']} events then written; "
             f"{catch_up['vs_receiver_capacity']}x the receiver's capacity; every event "
             f"{catch_up['all_arrived']}, {catch_up['missing']} missing, "
             f"{catch_up['repeats']} repeats, {catch_up['bad_signatures']} bad signatures)"]
    during = catch_up.get("sync_during")
    if during is not None:
        lines.append(f"    meanwhile      {during['users_acked']} users acknowledged, "
                     f"{during['journal_entries_applied']} journal entries applied, "
                     f"{during['events_written']} events written; sync requests running "
                     f"{during['requests_running_share']} of the interval")
    cpu = catch_up.get("cpu")
    if cpu is not None:
        lines.append(f"    cpu            {cpu['seconds']} s from enabling to the backlog's "
                     f"count received, machine {cpu['machine_cores_busy']} cores busy, "
                     + ", ".join(f"{role} {f['cores']}" for role, f in cpu["roles"].items()
                                 if f["cores"]))
    return lines


def _replay(replay: dict[str, Any] | None) -> list[str]:
    if replay is None:
        return []
    return [f"  backlog replay   {replay['per_s']} events/s ({replay['events']} events in "
            f"{replay['seconds']} s: the whole outbox sent again, the rest of the stack idle; "
            f"{replay['vs_receiver_capacity']}x the receiver's capacity; CPU per event: events "
            f"worker {replay['events_worker_cpu_us_per_event']} us, receiver "
            f"{replay['receiver_cpu_us_per_event']} us), "
            f"machine {replay['cpu']['machine_cores_busy']} cores busy, "
            + ", ".join(f"{role} {f['cores']}" for role, f in replay["cpu"]["roles"].items()
                        if f["cores"])]


def _cpu(cpu: dict[str, Any]) -> list[str]:
    roles = ", ".join(f"{role} {f['cpu_s']} s ({f['cores']})" for role, f in cpu["roles"].items())
    return [f"cpu                {cpu['seconds']} s of the sync and its delivery, machine "
            f"{cpu['machine_cores_busy']} cores busy; per role CPU s (cores): {roles}"]


def _rss(rss: dict[str, Any]) -> list[str]:
    lines = [f"memory (RSS)       peak during the sync, sampled every {rss['interval_s']} s "
             f"({rss['samples']} samples)"]
    for role, figures in rss["roles"].items():
        processes = ", ".join(f"{p['name']}[{p['pid']}] {p['peak_mib']}"
                              for p in rss["processes"] if p["role"] == role)
        lines.append(f"  {role:<8} {figures['peak_total_mib']} MiB in all, largest process "
                     f"{figures['peak_process_mib']} MiB ({processes})")
    return lines


def _existence(existence: dict[str, Any]) -> list[str]:
    return [
        f"existence phase    {existence['per_s']} GET per s, p50 {existence['p50_ms']} ms, "
        f"p99 {existence['p99_ms']} ms ({existence['existing']} existing, "
        f"{existence['missing']} missing, {existence['wrong_answers']} wrong, "
        f"{existence['server_errors_5xx']} 5xx)"]


def _sessions(sessions: dict[str, Any], base: dict[str, Any]) -> list[str]:
    revoked, check = sessions["deprovision_to_revoked"], sessions["check"]
    one = check["one_at_a_time"]
    cpu = ", ".join(f"{role} {us}" for role, us in check["cpu_us_per_check"].items())
    return [
        f"sessions           p50 {revoked['p50_s']} s, p99 {revoked['p99_s']} s (target <= "
        f"{revoked['target_p99_s']} s), max {revoked['max_s']} s ({revoked['count']} of "
        f"{revoked['deactivations']}; deprovision acknowledged -> session check revoked, "
        f"polled every 20 ms during the sync; {revoked['failure_count']} failures)",
        f"  session check    {check['per_s']} checks/s (target >= {check['targets']['per_s']}), "
        f"p50 {check['p50_ms']} ms, p99 {check['p99_ms']} ms (target <= "
        f"{check['targets']['p99_ms']} ms) ({check['requests']} checks of {check['sessions']} "
        f"sessions, {check['wrong_answers']} wrong, {check['server_errors_5xx']} 5xx, "
        f"{check['throttled_429_503']} throttled) -> "
        f"{base.get('session_check_vs_bare_falcon_get')}x the bare Falcon GET (p99 "
        f"{base.get('session_check_p99_vs_bare_falcon_get_p99')}x)",
        f"  one at a time    p50 {one['p50_ms']} ms, p99 {one['p99_ms']} ms (target <= "
        f"{check['targets']['p99_ms']} ms; {one['requests']} checks on one connection, "
        f"{one['per_s']}/s) -> p99 "
        f"{base.get('session_check_one_at_a_time_p99_vs_bare_falcon')}x the bare Falcon GET's "
        f"(p50 {base.get('bare_falcon_session_get_one_at_a_time_p50_ms')} ms, p99 "
        f"{base.get('bare_falcon_session_get_one_at_a_time_p99_ms')} ms)",
        f"    cpu            machine {check['cpu']['machine_cores_busy']} cores busy over "
        f"{check['cpu']['seconds']} s; per check us: {cpu}"]


def _baselines(base: dict[str, Any]) -> list[str]:
    lines = []
    if "bare_falcon_post_per_s" in base:
        lines.append(f"baseline falcon    {base['bare_falcon_post_per_s']} POST/s (p99 "
                     f"{base['bare_falcon_p99_ms']} ms) -> scimflow acks at "
                     f"{base['ack_vs_bare_falcon']}x")
    if "bare_falcon_get_per_s" in base:
        lines.append(f"baseline falcon    {base['bare_falcon_get_per_s']} GET/s (p50 "
                     f"{base['bare_falcon_get_p50_ms']} ms, p99 {base['bare_falcon_get_p99_ms']} "
                     f"ms) -> scimflow looks up at {base['existence_vs_bare_falcon_get']}x "
                     f"(p99 {base['existence_p99_vs_bare_falcon_get_p99']}x)")
    if "bare_falcon_session_get_per_s" in base:
        lines.append(f"baseline falcon    {base['bare_falcon_session_get_per_s']} session-shaped "
                     f"GET/s (p50 {base['bare_falcon_session_get_p50_ms']} ms, p99 "
                     f"{base['bare_falcon_session_get_p99_ms']} ms) -> scimflow checks sessions "
                     f"at {base['session_check_vs_bare_falcon_get']}x")
    if "raw_batched_upsert_rows_per_s" in base:
        lines.append(f"baseline upsert    {base['raw_batched_upsert_rows_per_s']} rows/s -> "
                     f"scimflow applies at {base['apply_vs_raw_upsert']}x")
    return lines
