# frozen_string_literal: true

module Profiles
  class KeysController < ApplicationController
    actions :index, :show, :create, :destroy
  end
end
