//! Decisions through the runner on the memory store: concurrent
//! registrations of one username leave exactly one owner, and 16 writers
//! subscribing students to courses never overbook, retrying conflicts.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strata::decision::courses::{
    CourseEvent, Courses, Subscribe, COURSE_CAPACITY, STUDENT_COURSE_LIMIT,
};
use strata::decision::usernames::{Register, Usernames};
use strata::decision::{DecisionError, DecisionRunner};
use strata::{EventStore, MemoryStore, ReadFilter, RetryPolicy};

fn patient() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(1_000)
        .with_base_delay(Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_many_registrations_of_a_name_wins() {
    let runner = Arc::new(DecisionRunner::with_retry(MemoryStore::new(), patient()));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let runner = Arc::clone(&runner);
            tokio::spawn(async move {
                let c = Register {
                    username: "ada".into(),
                    user: format!("u{i}"),
                };
                runner.execute::<Usernames>(&c).await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(o) => {
                assert_eq!(o.events, 1);
                won += 1;
            }
            Err(DecisionError::Rejected(e)) => assert_eq!(e.username, "ada"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    let all = runner
        .store()
        .read_all(strata::Position::START, 100, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    // Its stream is the default one, named by its first tag.
    assert_eq!(all[0].stream_id.as_str(), format!("dcb-{}", all[0].tags[0]));
    assert!(all[0].tags.iter().any(|t| t.as_str() == "username:ada"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_never_overbook() {
    let runner = Arc::new(DecisionRunner::with_retry(MemoryStore::new(), patient()));
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let runner = Arc::clone(&runner);
            tokio::spawn(async move {
                for i in 0..40 {
                    let c = attempt(w, i);
                    match runner.execute::<Courses>(&c).await {
                        Ok(_) | Err(DecisionError::Rejected(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = runner
        .store()
        .read_all(strata::Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    let (mut per_course, mut per_student) = (BTreeMap::new(), BTreeMap::new());
    let mut pairs = BTreeSet::new();
    for e in &all {
        let CourseEvent::Subscribed { course, student } =
            strata::event::decode::<CourseEvent>(&e.event_type, &e.data).unwrap();
        *per_course.entry(course.clone()).or_insert(0usize) += 1;
        *per_student.entry(student.clone()).or_insert(0usize) += 1;
        assert!(pairs.insert((course, student)), "a pair subscribed twice");
    }
    assert!(per_course.values().all(|&n| n <= COURSE_CAPACITY));
    assert!(per_student.values().all(|&n| n <= STUDENT_COURSE_LIMIT));
    // No course fills (14 students) and no student reaches the limit (4
    // courses): every pair tried is subscribed, none lost to a race.
    let tried: BTreeSet<(String, String)> = (0..16)
        .flat_map(|w| (0..40).map(move |i| attempt(w, i)))
        .map(|c| (c.course, c.student))
        .collect();
    assert_eq!(pairs, tried);
}

fn attempt(w: usize, i: usize) -> Subscribe {
    Subscribe {
        course: format!("c{}", (w + i) % 4),
        student: format!("s{}", (w * 5 + i) % 14),
    }
}
