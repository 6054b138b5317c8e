# The Rails ActionCable peer for cable-bench: Debian's ruby-actioncable on puma, the
# async (in-process) adapter, and the BenchmarkChannel that websocket-bench expects
# (the same channel as websocket-shootout's and AnyCable's benchmarks).
#
#   JWT_SECRET_FILE=secret puma -t 4:4 -b tcp://127.0.0.1:28080 bench/rails/config.ru
#
# With JWT_SECRET_FILE set, connect verifies an HS256 token (?jid=) the way the plugin
# does (signature, exp, sub); without it every connection is anonymous.
require "action_cable"
require "base64"
require "json"
require "logger"
require "openssl"

SECRET = ENV["JWT_SECRET_FILE"] && File.read(ENV["JWT_SECRET_FILE"]).sub(/\r?\n\z/, "")

module ApplicationCable
  class Connection < ActionCable::Connection::Base
    identified_by :user

    def connect
      self.user = SECRET ? verified_user : "anonymous"
      reject_unauthorized_connection unless user
    end

    private

    def verified_user
      token = request.params["jid"].to_s
      head, body, sig = token.split(".")
      return nil unless head && body && sig
      mac = OpenSSL::HMAC.digest("SHA256", SECRET, "#{head}.#{body}")
      return nil unless OpenSSL.fixed_length_secure_compare(mac, Base64.urlsafe_decode64(sig + "=" * (-sig.size % 4)))
      return nil unless JSON.parse(Base64.urlsafe_decode64(head + "=" * (-head.size % 4)))["alg"] == "HS256"
      claims = JSON.parse(Base64.urlsafe_decode64(body + "=" * (-body.size % 4)))
      return nil if claims["exp"].is_a?(Integer) && claims["exp"] < Time.now.to_i
      claims["sub"]
    rescue ArgumentError, JSON::ParserError
      nil
    end
  end

  class Channel < ActionCable::Channel::Base
  end
end

class BenchmarkChannel < ApplicationCable::Channel
  def subscribed
    stream_from "all"
  end

  def echo(data)
    transmit data
  end

  def broadcast(data)
    ActionCable.server.broadcast "all", data
    data["action"] = "broadcastResult"
    transmit data
  end
end

ActionCable.server.config.cable = { "adapter" => "async" }
ActionCable.server.config.connection_class = -> { ApplicationCable::Connection }
ActionCable.server.config.disable_request_forgery_protection = true
ActionCable.server.config.logger = Logger.new(IO::NULL)
ActionCable.server.config.worker_pool_size = Integer(ENV.fetch("CABLE_WORKERS", "4"))

run ActionCable.server
