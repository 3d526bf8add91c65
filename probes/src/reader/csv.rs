//! The CSV dump parser: one `scope,tid,key,value` row per counter, checked against the catalogue.

use super::*;

/// One CSV field and the byte offset where it starts.
struct Field {
    at: usize,
    text: String,
}

/// Splits the file into records, honouring quoted fields (which may hold `,`, `"` and line breaks).
fn records(src: &Source) -> Result<Vec<Vec<Field>>, ReadError> {
    let bytes = src.bytes;
    if bytes.last() != Some(&b'\n') {
        return Err(src.truncated(bytes.len(), "the last line has no line break"));
    }
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let mut text = Vec::new();
        if bytes[at] == b'"' {
            at += 1;
            loop {
                match bytes.get(at) {
                    None => return Err(src.truncated(at, "the file ends inside a quoted field")),
                    Some(b'"') if bytes.get(at + 1) == Some(&b'"') => {
                        text.push(b'"');
                        at += 2;
                    }
                    Some(b'"') => {
                        at += 1;
                        break;
                    }
                    Some(&b) => {
                        text.push(b);
                        at += 1;
                    }
                }
            }
            if !matches!(bytes.get(at), Some(b',' | b'\n' | b'\r')) {
                return Err(src.syntax(at, "text after a closing quote"));
            }
        } else {
            while let Some(&b) = bytes.get(at) {
                match b {
                    b',' | b'\n' | b'\r' => break,
                    b'"' => return Err(src.syntax(at, "quote inside an unquoted field")),
                    _ => {
                        text.push(b);
                        at += 1;
                    }
                }
            }
        }
        let text =
            String::from_utf8(text).map_err(|_| src.syntax(start, "field is not valid UTF-8"))?;
        record.push(Field { at: start, text });
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b'\r') if bytes.get(at + 1) == Some(&b'\n') => {
                at += 2;
                records.push(std::mem::take(&mut record));
            }
            Some(b'\n') => {
                at += 1;
                records.push(std::mem::take(&mut record));
            }
            _ => return Err(src.syntax(at, "stray carriage return")),
        }
    }
    Ok(records)
}

fn lock_key(site: LockSite, stat: LockStat) -> String {
    format!("{LOCK_KEY_PREFIX}{}.{}", site.key(), stat.key())
}

fn slot_for(schema: u32, key: &str) -> Option<Slot> {
    if let Some(slot) = event_slot(schema, key) {
        return Some(slot);
    }
    let rest = key.strip_prefix(LOCK_KEY_PREFIX)?;
    let (site, stat) = rest.split_once('.')?;
    Some(Slot::Lock(
        LockSite::from_key(site)?,
        LockStat::from_key(stat)?,
    ))
}

pub(super) fn parse(src: &Source) -> Result<Dump, ReadError> {
    let records = records(src)?;
    let Some((header, rows)) = records.split_first() else {
        return Err(src.truncated(0, "no header line"));
    };
    let header_text: Vec<&str> = header.iter().map(|f| f.text.as_str()).collect();
    if header_text.join(",") != CSV_HEADER {
        return Err(src.syntax(0, format!("the header should be `{CSV_HEADER}`")));
    }
    for row in rows {
        if row.len() != 4 {
            return Err(src.syntax(row[0].at, format!("expected 4 fields, found {}", row.len())));
        }
    }
    // The version decides how everything else is read, so it is checked before any other row.
    let schema_row = rows
        .iter()
        .find(|r| r[0].text == "meta" && r[2].text == "schema");
    let schema = match schema_row {
        Some(r) => src.schema(r[3].at, &r[3].text)?,
        None => return Err(src.missing(header[0].at, "schema")),
    };

    let mut meta: [Option<&Field>; 3] = [None; 3];
    const META_KEYS: [&str; 3] = ["lane", "pid", "wall_ns"];
    let mut totals = Counters::new(schema);
    let mut threads: Vec<(u64, usize, Counters)> = Vec::new();
    let mut thread_index: HashMap<u64, usize> = HashMap::new();
    let mut seen_schema = false;
    let mut end = None;
    for (i, row) in rows.iter().enumerate() {
        let [scope, tid, key, value] = [&row[0], &row[1], &row[2], &row[3]];
        if scope.text != "thread" && !tid.text.is_empty() {
            return Err(src.syntax(tid.at, format!("`{}` rows have no tid", scope.text)));
        }
        match scope.text.as_str() {
            "meta" if key.text == "schema" => {
                if std::mem::replace(&mut seen_schema, true) {
                    return Err(src.duplicate(key.at, "schema"));
                }
            }
            "meta" => {
                let i = META_KEYS
                    .iter()
                    .position(|k| *k == key.text)
                    .ok_or_else(|| src.unknown(key.at, &key.text))?;
                if meta[i].replace(value).is_some() {
                    return Err(src.duplicate(key.at, &key.text));
                }
            }
            "total" => {
                let slot =
                    slot_for(schema, &key.text).ok_or_else(|| src.unknown(key.at, &key.text))?;
                if !totals.set(slot, src.count(value.at, &key.text, &value.text)?) {
                    return Err(src.duplicate(key.at, &key.text));
                }
            }
            "thread" => {
                let tid_value = src.count(tid.at, "tid", &tid.text)?;
                let slot =
                    slot_for(schema, &key.text).ok_or_else(|| src.unknown(key.at, &key.text))?;
                let index = *thread_index.entry(tid_value).or_insert_with(|| {
                    threads.push((tid_value, scope.at, Counters::new(schema)));
                    threads.len() - 1
                });
                if !threads[index]
                    .2
                    .set(slot, src.count(value.at, &key.text, &value.text)?)
                {
                    return Err(src.duplicate(key.at, &format!("{} (tid {tid_value})", key.text)));
                }
            }
            "end" => {
                if key.text != "rows" {
                    return Err(src.unknown(key.at, &key.text));
                }
                let stated = src.count(value.at, "rows", &value.text)?;
                if stated != i as u64 {
                    return Err(src.syntax(
                        value.at,
                        format!("the trailer counts {stated} rows, the file has {i}"),
                    ));
                }
                if i + 1 != rows.len() {
                    return Err(src.syntax(rows[i + 1][0].at, "rows after the `end` trailer"));
                }
                end = Some(scope.at);
            }
            other => {
                return Err(src.syntax(
                    scope.at,
                    format!("unknown scope `{other}` (meta, total, thread, end)"),
                ))
            }
        }
    }
    let Some(end_at) = end else {
        return Err(src.truncated(src.bytes.len(), "no `end,,rows,N` trailer"));
    };
    let [lane, pid, wall_ns] = meta;
    let lane = lane
        .ok_or_else(|| src.missing(end_at, "lane"))?
        .text
        .clone();
    let pid_field = pid.ok_or_else(|| src.missing(end_at, "pid"))?;
    let pid = src.count(pid_field.at, "pid", &pid_field.text)?;
    let pid =
        u32::try_from(pid).map_err(|_| src.bad_count(pid_field.at, "pid", &pid_field.text))?;
    let wall_field = wall_ns.ok_or_else(|| src.missing(end_at, "wall_ns"))?;
    let wall_ns = src.count(wall_field.at, "wall_ns", &wall_field.text)?;
    if let Some(key) = totals.first_missing(lock_key) {
        return Err(src.missing(end_at, &key));
    }
    let threads = threads
        .into_iter()
        .map(|(tid, first_at, c)| match c.first_missing(lock_key) {
            Some(key) => Err(src.missing(first_at, &format!("{key} (tid {tid})"))),
            None => Ok(ThreadRow {
                tid,
                events: c.events,
                locks: c.locks,
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Dump {
        schema,
        lane,
        pid,
        wall_ns,
        totals: totals.events,
        lock_totals: totals.locks,
        threads,
    })
}
