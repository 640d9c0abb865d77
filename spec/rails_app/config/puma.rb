# frozen_string_literal: true

# Single mode (one process), several threads: concurrent requests share the classifier, the
# constrainers and the connection pool, as in one GitLab Puma worker.
threads_count = Integer(ENV.fetch("PUMA_THREADS", "4"))
threads threads_count, threads_count
environment "production"
bind "tcp://127.0.0.1:#{ENV.fetch("PORT")}"
quiet
