//! A course takes at most [`COURSE_CAPACITY`] students, and a student at
//! most [`STUDENT_COURSE_LIMIT`] courses: one rule over two aggregates'
//! events, decided with one query over both tags.

use serde::{Deserialize, Serialize};
use strata_core::dcb::{Query, QueryItem, Tag};

use super::Decision;
use crate::event::DomainEvent;

/// Students one course takes.
pub const COURSE_CAPACITY: usize = 30;
/// Courses one student takes.
pub const STUDENT_COURSE_LIMIT: usize = 10;

/// Subscription events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CourseEvent {
    /// `student` joined `course`.
    Subscribed {
        /// The course.
        course: String,
        /// The student.
        student: String,
    },
}

impl DomainEvent for CourseEvent {}

/// Subscribe a student to a course.
#[derive(Clone, Debug)]
pub struct Subscribe {
    /// The course.
    pub course: String,
    /// The student.
    pub student: String,
}

/// Why a subscription is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscribeError {
    /// The course has its capacity.
    #[error("course `{0}` is full")]
    CourseFull(String),
    /// The student has the limit of courses.
    #[error("student `{0}` takes the most courses allowed")]
    StudentAtLimit(String),
    /// The student is in the course already.
    #[error("student `{student}` is in course `{course}` already")]
    AlreadySubscribed {
        /// The course.
        course: String,
        /// The student.
        student: String,
    },
}

/// What the rule knows about one course and one student.
#[derive(Debug)]
pub struct Boundary {
    command: Subscribe,
    in_course: usize,
    of_student: usize,
    already: bool,
}

/// The course-subscription rule, for the command's course and student.
pub struct Courses;

/// The tag of a course or a student (names are tag-safe: see [`Tag::new`]).
pub fn tag(kind: &str, name: &str) -> Tag {
    Tag::new(format!("{kind}:{name}"))
        .unwrap_or_else(|_| Tag::new(kind).unwrap_or_else(|_| unreachable!("a valid tag")))
}

impl Decision for Courses {
    type Command = Subscribe;
    type Event = CourseEvent;
    type State = Boundary;
    type Error = SubscribeError;

    fn query(c: &Subscribe) -> Query {
        Query {
            items: vec![
                QueryItem::new(["Subscribed"], [tag("course", &c.course)]),
                QueryItem::new(["Subscribed"], [tag("student", &c.student)]),
            ],
        }
    }

    fn tags(e: &CourseEvent) -> Vec<Tag> {
        let CourseEvent::Subscribed { course, student } = e;
        vec![tag("course", course), tag("student", student)]
    }

    fn initial(c: &Subscribe) -> Boundary {
        Boundary {
            command: c.clone(),
            in_course: 0,
            of_student: 0,
            already: false,
        }
    }

    fn evolve(b: &mut Boundary, e: &CourseEvent) {
        let CourseEvent::Subscribed { course, student } = e;
        let same_course = *course == b.command.course;
        let same_student = *student == b.command.student;
        b.in_course += usize::from(same_course);
        b.of_student += usize::from(same_student);
        b.already |= same_course && same_student;
    }

    fn decide(b: &Boundary, c: &Subscribe) -> Result<Vec<CourseEvent>, SubscribeError> {
        if b.already {
            return Err(SubscribeError::AlreadySubscribed {
                course: c.course.clone(),
                student: c.student.clone(),
            });
        }
        if b.in_course >= COURSE_CAPACITY {
            return Err(SubscribeError::CourseFull(c.course.clone()));
        }
        if b.of_student >= STUDENT_COURSE_LIMIT {
            return Err(SubscribeError::StudentAtLimit(c.student.clone()));
        }
        Ok(vec![CourseEvent::Subscribed {
            course: c.course.clone(),
            student: c.student.clone(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DecisionTest;

    fn subscribed(course: &str, student: &str) -> CourseEvent {
        CourseEvent::Subscribed {
            course: course.into(),
            student: student.into(),
        }
    }

    fn subscribe(course: &str, student: &str) -> Subscribe {
        Subscribe {
            course: course.into(),
            student: student.into(),
        }
    }

    #[test]
    fn a_course_with_room_takes_a_student_with_room() {
        DecisionTest::<Courses>::given(vec![subscribed("c1", "s1"), subscribed("c2", "s2")])
            .when(subscribe("c1", "s2"))
            .then(vec![subscribed("c1", "s2")]);
    }

    #[test]
    fn a_full_course_and_a_busy_student_are_refused() {
        let full: Vec<_> = (0..COURSE_CAPACITY)
            .map(|i| subscribed("c1", &format!("s{i}")))
            .collect();
        DecisionTest::<Courses>::given(full)
            .when(subscribe("c1", "new"))
            .then_rejected(|e| *e == SubscribeError::CourseFull("c1".into()));
        let busy: Vec<_> = (0..STUDENT_COURSE_LIMIT)
            .map(|i| subscribed(&format!("c{i}"), "s1"))
            .collect();
        DecisionTest::<Courses>::given(busy)
            .when(subscribe("other", "s1"))
            .then_rejected(|e| *e == SubscribeError::StudentAtLimit("s1".into()));
        DecisionTest::<Courses>::given(vec![subscribed("c1", "s1")])
            .when(subscribe("c1", "s1"))
            .then_rejected(|e| matches!(e, SubscribeError::AlreadySubscribed { .. }));
    }
}
