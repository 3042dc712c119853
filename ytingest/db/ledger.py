"""``LedgerStore``: the ``channels`` and ``videos`` tables — what was found, tried, failed and stored."""

from __future__ import annotations

from datetime import date
from typing import Any

from ytingest.db.pool import Store, retried
from ytingest.items import WAITING, VideoRef
from ytingest.sourcetext import CHANNEL_MAX, clean_line, clean_text, pg_text, public_url


class LedgerStore(Store):
    """Which channels were run and each video's status, attempts and failure reason."""

    @retried
    async def register_channel(self, url: str) -> None:
        """Record a run of the channel ``url`` (stored without its userinfo: ``public_url``)."""
        url = pg_text(public_url(url))
        async with self._conn("register channel") as conn:
            await conn.execute(
                "INSERT INTO channels (url, last_run) VALUES ($1, now())"
                " ON CONFLICT (url) DO UPDATE SET last_run = now()",
                url,
            )

    @retried
    async def register_video(self, ref: VideoRef) -> None:
        """Record a video as pending and count an attempt; an upcoming premiere or a live-now
        stream (``ref.live_status``) as ``upcoming``/``live``, no attempt. A done video stays done.
        The listing's upload date and channel name/id are kept when a later listing lacks them."""
        status = WAITING.get(ref.live_status or "", "pending")
        async with self._conn("register video") as conn:
            await conn.execute(
                """INSERT INTO videos (id, channel, title, url, webpage_url, duration, upload_date,
                                       channel_name, channel_id, status, attempts)
                   VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, $7::date, NULLIF($8, ''), NULLIF($9, ''),
                           $10, CASE WHEN $10 = 'pending' THEN 1 ELSE 0 END)
                   ON CONFLICT (id) DO UPDATE SET
                     title = EXCLUDED.title, url = EXCLUDED.url, webpage_url = EXCLUDED.webpage_url,
                     duration = EXCLUDED.duration, attempts = videos.attempts + EXCLUDED.attempts,
                     upload_date = COALESCE(EXCLUDED.upload_date, videos.upload_date),
                     channel_name = COALESCE(EXCLUDED.channel_name, videos.channel_name),
                     channel_id = COALESCE(EXCLUDED.channel_id, videos.channel_id),
                     status = CASE WHEN videos.status = 'done' THEN 'done' ELSE EXCLUDED.status END,
                     updated_at = now()""",
                pg_text(ref.id),
                pg_text(public_url(ref.channel)),
                clean_line(ref.title),  # cleaned where it entered; again here for any other caller
                pg_text(public_url(ref.url)),
                pg_text(public_url(ref.webpage_url)),
                ref.duration,
                date.fromisoformat(ref.upload_date) if ref.upload_date else None,
                clean_line(ref.channel_name, CHANNEL_MAX),
                clean_line(ref.channel_id, 100),
                status,
            )

    @retried
    async def record_metadata(
        self, video_id: str, *, upload_date: str | None, channel_name: str, channel_id: str
    ) -> None:
        """What the download's own metadata says: the upload date (exact: it replaces a listing's
        date, which YouTube gives only approximately), and the uploader's channel name and id."""
        async with self._conn("record metadata") as conn:
            await conn.execute(
                """UPDATE videos SET upload_date = COALESCE($2::date, upload_date),
                     channel_name = COALESCE(NULLIF($3, ''), channel_name),
                     channel_id = COALESCE(NULLIF($4, ''), channel_id)
                   WHERE id = $1""",
                video_id,
                date.fromisoformat(upload_date) if upload_date else None,
                clean_line(channel_name, CHANNEL_MAX),
                clean_line(channel_id, 100),
            )

    @retried
    async def mark_failed(self, video_id: str, stage: str, reason: str, *, permanent: bool = False) -> None:
        """Record why a video failed; ``permanent`` ones are not retried by a plain re-run."""
        async with self._conn("record failure") as conn:
            await conn.execute(
                "UPDATE videos SET status = 'failed', error = $2, error_stage = $3, permanent = $4,"
                " updated_at = now() WHERE id = $1 AND status <> 'done'",
                video_id,
                clean_text(reason, 2000),  # yt-dlp's stderr may hold anything
                stage,
                permanent,
            )

    @retried
    async def count_attempt(self, video_id: str) -> None:
        """One more try at a video within this run (a retry after a transient error)."""
        async with self._conn("count attempt") as conn:
            await conn.execute("UPDATE videos SET attempts = attempts + 1 WHERE id = $1", video_id)

    @retried
    async def skip_reason(self, video_id: str) -> str | None:
        """Why discovery should skip this video: stored already, or failed permanently; else None."""
        async with self._conn("read ledger") as conn:
            row = await conn.fetchrow("SELECT status, permanent FROM videos WHERE id = $1", video_id)
        if row is None:
            return None
        if row["status"] == "done":
            return "already stored"
        if row["status"] == "failed" and row["permanent"]:
            return "failed permanently (ytingest retry --failed tries again)"
        return None

    @retried
    async def failed_refs(self, *, include_pending: bool = False) -> list[VideoRef]:
        """Videos to try again (failed, and optionally pending), oldest first, as VideoRefs. Their
        URLs are the stored, public ones: a credential the listing had is not among them."""
        states = ["failed", "pending"] if include_pending else ["failed"]
        async with self._conn("read failures") as conn:
            rows = await conn.fetch(
                "SELECT id, url, title, duration, channel, webpage_url FROM videos"
                " WHERE status = ANY($1::text[]) ORDER BY created_at, id",
                states,
            )
            await conn.execute("UPDATE videos SET permanent = false WHERE status = ANY($1::text[])", states)
        return [
            VideoRef(r["id"], r["url"], r["title"], r["duration"], r["channel"] or "", r["webpage_url"])
            for r in rows
        ]

    async def status(self, channel: str | None = None) -> dict[str, Any]:
        """Counts by status, stored segments, every failure with its reason, every video stored with
        a warning (``warned``: how many; ``warnings``: each with its warning) and the videos waiting
        to be ordinary ones (``waiting``: upcoming premieres, live-now streams); all of them only for
        ``channel`` (the URL a run was given) when one is named."""
        mine = "($1::text IS NULL OR channel = $1)"
        channel = None if channel is None else pg_text(public_url(channel))
        async with self._conn("status") as conn:
            counts = {
                r["status"]: r["n"]
                for r in await conn.fetch(
                    f"SELECT status, count(*) AS n FROM videos WHERE {mine} GROUP BY status", channel
                )
            }
            if channel is None:
                segments = await conn.fetchval("SELECT count(*) FROM segments")
            else:
                segments = await conn.fetchval(
                    "SELECT count(*) FROM segments s JOIN videos v ON v.id = s.video_id WHERE v.channel = $1",
                    channel,
                )
            failures = await conn.fetch(
                "SELECT id, error, error_stage, attempts FROM videos"
                f" WHERE status = 'failed' AND {mine} ORDER BY updated_at",
                channel,
            )
            warned = await conn.fetch(
                "SELECT id, title, warning FROM videos"
                f" WHERE status = 'done' AND warning IS NOT NULL AND {mine} ORDER BY done_at, id",
                channel,
            )
            waiting = await conn.fetch(
                "SELECT id, title, status, webpage_url FROM videos"
                f" WHERE status = ANY($2::text[]) AND {mine} ORDER BY updated_at, id",
                channel,
                list(WAITING.values()),
            )
        return {
            "videos": {k: counts.get(k, 0) for k in ("done", "failed", "pending")},
            "segments": segments,
            "warned": len(warned),
            "warnings": [{"video_id": r["id"], "title": r["title"], "warning": r["warning"]} for r in warned],
            "waiting": [
                {"video_id": r["id"], "title": r["title"], "status": r["status"], "url": r["webpage_url"]}
                for r in waiting
            ],
            "failures": [
                {
                    "video_id": r["id"],
                    "reason": r["error"],
                    "stage": r["error_stage"],
                    "attempts": r["attempts"],
                }
                for r in failures
            ],
        }
